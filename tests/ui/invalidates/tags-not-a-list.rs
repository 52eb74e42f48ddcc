use cachette::invalidates;

#[invalidates(tags = "users")]
async fn reset_users() {}

fn main() {}

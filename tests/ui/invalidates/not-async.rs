use cachette::invalidates;

#[invalidates(tags = ["users"])]
fn reset_users() {}

fn main() {}

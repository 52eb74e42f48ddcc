use cachette::invalidates;

#[invalidates(patterns = ["guild:{guild}:*"])]
async fn reset_guild(guild_id: u64) {
    let _ = guild_id;
}

fn main() {}

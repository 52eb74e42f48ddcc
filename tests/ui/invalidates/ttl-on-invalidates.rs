use cachette::invalidates;

#[invalidates(tags = ["user:{id}"], ttl = 60)]
async fn update_user(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}

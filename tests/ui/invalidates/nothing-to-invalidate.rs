use cachette::invalidates;

#[invalidates(name = "users.update")]
async fn update_user(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}

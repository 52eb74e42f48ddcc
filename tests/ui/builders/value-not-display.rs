struct UserId(u64);

fn main() {
    let _ = cachette::key!("user:{}", UserId(1));
}

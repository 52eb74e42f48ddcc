fn main() {
    let _ = cachette::key!("user:{}", 1, 2);
}

fn main() {
    let _ = cachette::key!("user:{id}:{}", id = 1, 2);
}

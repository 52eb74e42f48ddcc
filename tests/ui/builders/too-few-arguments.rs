fn main() {
    let _ = cachette::key!("guild:{}:member:{}", 7);
}

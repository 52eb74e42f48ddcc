fn main() {
    let id = "a";
    let _ = cachette::pattern!("guild:{id:*");
}

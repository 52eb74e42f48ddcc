fn main() {
    let _ = cachette::pattern!();
}

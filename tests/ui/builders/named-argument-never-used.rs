fn main() {
    let _ = cachette::tag!("user:{id}", id = 1, tenant = "acme");
}

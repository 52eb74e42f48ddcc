fn main() {
    let template = "user:{}";
    let _ = cachette::key!(template, 1);
}

fn main() {
    let id = 1;
    let _ = cachette::key!("user:{idd}");
    let _ = id;
}

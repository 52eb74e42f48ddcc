use cachette::cached;

#[cached(key = "n:{n}")]
const fn twice(n: u32) -> u32 {
    n * 2
}

fn main() {}

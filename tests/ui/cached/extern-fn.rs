use cachette::cached;

#[cached(key = "n:{n}")]
extern "C" fn twice(n: u32) -> u32 {
    n * 2
}

fn main() {}

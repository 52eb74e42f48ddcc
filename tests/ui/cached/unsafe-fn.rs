use cachette::cached;

#[cached(key = "raw:{addr}")]
async unsafe fn read_raw(addr: usize) -> u8 {
    addr as u8
}

fn main() {}

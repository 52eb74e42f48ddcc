use cachette::cache_put;

struct Handle;

#[cache_put(key = "handle:{id}")]
async fn open(id: u64) -> Option<Handle> {
    let _ = id;
    Some(Handle)
}

fn main() {}

//! Every stampede and freshness option of `#[cached]`, in each of its forms.
use cachette::cached;

#[cached(key = "a:{id}", ttl = "10m", stale = "30s", jitter = 0.2, early_refresh = 2.0)]
async fn a(id: u64) -> String {
    format!("{id}")
}

#[cached(key = "b:{id}", stale_if_error = "5m", lock, single_flight = true)]
async fn b(id: u64) -> Result<String, std::io::Error> {
    Ok(format!("{id}"))
}

#[cached(key = "c:{id}", lock = "3s", early_refresh = false, jitter = 0)]
async fn c(id: u64) -> Option<String> {
    Some(format!("{id}"))
}

#[cached(key = "d:{id}", lock(ttl = "10s", wait = "2s"), single_flight = false, early_refresh = true)]
async fn d(id: u64) -> u64 {
    id
}

fn main() {
    let _ = (a(1), b(1), c(1), d(1));
}

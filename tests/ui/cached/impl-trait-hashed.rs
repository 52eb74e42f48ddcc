use cachette::cached;

#[cached]
async fn describe(id: u64, label: impl serde::Serialize) -> String {
    let _ = label;
    id.to_string()
}

fn main() {}

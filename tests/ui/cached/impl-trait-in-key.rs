use cachette::cached;

#[cached(key = "label:{label}")]
async fn describe(label: impl std::fmt::Display) -> String {
    label.to_string()
}

fn main() {}

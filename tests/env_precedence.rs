//! The environment wins over settings made in code, whatever their order (`from_env`'s
//! table). Every case is in one `#[test]`: they set and remove process environment variables
//! one after the other, and nothing else in this binary reads them.

use cachette::Cache;

fn set(name: &str, value: &str) {
    // SAFETY: this binary's only test runs alone and sets variables sequentially; no other
    // thread reads or writes the environment meanwhile.
    unsafe { std::env::set_var(name, value) }
}

fn remove(name: &str) {
    // SAFETY: as in `set`.
    unsafe { std::env::remove_var(name) }
}

#[test]
fn the_environment_wins_whatever_the_order() {
    for name in [
        "CACHETTE_DISABLED",
        "CACHETTE_REDIS_URL",
        "REDIS_URL",
        "CACHETTE_MEMORY_BYTES",
        "CACHETTE_NAMESPACE",
        "CACHETTE_VERSION",
        "CACHETTE_TTL_PROFILES",
    ] {
        remove(name);
    }

    set("CACHETTE_NAMESPACE", "fromenv");
    let before = Cache::builder()
        .from_env()
        .namespace("incode")
        .build()
        .expect("builds");
    let after = Cache::builder()
        .namespace("incode")
        .from_env()
        .build()
        .expect("builds");
    assert_eq!(
        before.full_key("k"),
        "fromenv:k",
        "namespace set in code after from_env"
    );
    assert_eq!(
        after.full_key("k"),
        "fromenv:k",
        "namespace set in code before from_env"
    );
    remove("CACHETTE_NAMESPACE");

    set("CACHETTE_VERSION", "v9");
    let before = Cache::builder()
        .from_env()
        .version("v1")
        .build()
        .expect("builds");
    let after = Cache::builder()
        .version("v1")
        .from_env()
        .build()
        .expect("builds");
    assert_eq!(before.full_key("k"), "cachette:v9:k");
    assert_eq!(after.full_key("k"), "cachette:v9:k");
    remove("CACHETTE_VERSION");

    set("CACHETTE_DISABLED", "1");
    let before = Cache::builder()
        .from_env()
        .memory(1 << 20)
        .build()
        .expect("builds");
    assert_eq!(
        before.backend_kind(),
        "disabled",
        "backend set in code after from_env"
    );
    remove("CACHETTE_DISABLED");

    // Unset variables leave the code's settings alone.
    let code = Cache::builder()
        .from_env()
        .namespace("incode")
        .version("v1")
        .build()
        .expect("builds");
    assert_eq!(code.full_key("k"), "incode:v1:k");
}

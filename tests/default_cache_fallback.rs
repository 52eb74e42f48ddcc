//! A malformed environment must not take the service down, nor make it serve values another
//! process invalidated: the default cache falls back to *disabled*, not to a private memory
//! store.

use cachette::Options;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test]
async fn malformed_environment_gives_a_disabled_default() {
    // SAFETY: the only test of this binary; nothing reads the environment concurrently.
    unsafe {
        std::env::remove_var("CACHETTE_DISABLED");
        std::env::set_var("CACHETTE_REDIS_URL", "redis://:secret@[not a host");
    }
    let cache = cachette::default_cache();
    assert_eq!(cache.backend_kind(), "disabled");
    let runs = AtomicUsize::new(0);
    for _ in 0..2 {
        let v: u8 = cache
            .get_or_compute("k", &Options::new(), || async {
                runs.fetch_add(1, Ordering::SeqCst);
                7
            })
            .await;
        assert_eq!(v, 7);
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "nothing cached, every call computed"
    );
}

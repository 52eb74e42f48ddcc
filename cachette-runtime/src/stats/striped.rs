//! Counters that threads counting at the same time do not contend for.

use super::event::{EVENTS, Event};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes of a set of counters: threads count in their own stripe (its own cache line), so
/// that threads counting hits at the same time do not contend for one line; a read sums them.
const STRIPES: usize = 8;

#[derive(Default)]
#[repr(align(128))]
struct Stripe([AtomicU64; EVENTS]);

/// One counter per event, striped.
#[derive(Default)]
pub(crate) struct Counts(Box<[Stripe; STRIPES]>);

impl Counts {
    pub(crate) fn add(&self, event: Event) {
        self.0[stripe()].0[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, event: Event) -> u64 {
        self.0.iter().fold(0u64, |n, s| {
            n.wrapping_add(s.0[event as usize].load(Ordering::Relaxed))
        })
    }
}

/// This thread's stripe (threads take stripes in turn).
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
                s.set(i);
            }
            i
        })
        .unwrap_or(0)
        % STRIPES
}

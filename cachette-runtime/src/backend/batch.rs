//! Automatic batching of Redis lookups: the lookups that arrive while earlier ones are in
//! flight leave together, as one `MGET`.
//!
//! A lookup (an entry key and its tag keys) that finds fewer than [`MAX_IN_FLIGHT`] batches
//! on the wire sends its own `MGET` at once: alone, a lookup costs what it did before, one
//! round trip, and waits for nobody. When that many batches are in flight, the lookup joins
//! a queue instead. When a batch comes back, the queue is handed, whole, to one of the queued
//! callers, which sends every queued key in one `MGET` (a key asked for by several callers is
//! sent once) and hands each caller its replies. Under load, the server parses one command
//! and writes one reply for many lookups, and the client makes one request of the
//! multiplexed connection instead of many: this is what lets a hit cost less than a plain
//! `GET`. The idea is ioredis' auto-pipelining and DataLoader's batching, with no timer: a
//! batch never waits for more lookups to arrive.
//!
//! Cancellation: every step is safe to drop. A queued caller whose future is dropped is
//! skipped. If the caller that was handed a queue is dropped before it sends, or a batch's
//! future is dropped mid-flight, the callers it carried find their channel closed and each
//! sends its own lookup (not batched, so nothing waits on a dropped future).
//!
//! `MGET` is a multi-key command: with Redis Cluster, a batch would have to be split by hash
//! slot. There is no cluster backend yet (see ARCHITECTURE.md).

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Batches on the wire at once before lookups queue: enough that a moderate load rarely
/// queues, few enough that a heavy one does. On the 2-core bench machine (BENCHMARKS.md, run
/// 4) 8 instead of 2 lowered the load test's cached p50 from 216–288 µs to 155–175 µs, four
/// runs each, while hits at 64 tasks kept the same ratio to a raw `GET`.
pub(crate) const MAX_IN_FLIGHT: usize = 8;

/// The replies of one caller's keys, in the order it asked.
pub(crate) type Replies = Vec<Option<bytes::Bytes>>;

/// What a queued caller receives.
pub(crate) enum Msg {
    /// Its replies, or the batch's error.
    Done(Result<Replies>),
    /// Its turn to send: its own keys and those of `rest`, under `slot`.
    Lead(Slot, Vec<Waiter>),
}

/// A caller in the queue.
pub(crate) struct Waiter {
    keys: Vec<String>,
    tx: oneshot::Sender<Msg>,
}

#[derive(Default)]
struct State {
    queue: Vec<Waiter>,
    in_flight: usize,
}

/// The queue and the count of batches in flight; one per backend.
#[derive(Default)]
pub(crate) struct Batcher {
    state: Mutex<State>,
}

/// What [`Batcher::enter`] decided for a caller.
pub(crate) enum Entry {
    /// Send now: the caller's keys and those of the waiters (usually none).
    Lead(Slot, Vec<Waiter>),
    /// Wait for a message.
    Wait(oneshot::Receiver<Msg>),
}

/// One batch's place on the wire. Dropping it (the batch came back, failed, or its future
/// was dropped) frees the place and hands the queue to the next caller.
pub(crate) struct Slot(Option<Arc<Batcher>>);

impl Batcher {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding the lock: a count and a
        // queue, each updated in one statement.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends now, or queues `keys` (copied only when queued).
    fn enter(self: &Arc<Self>, keys: impl FnOnce() -> Vec<String>) -> Entry {
        let mut st = self.lock();
        if st.in_flight < MAX_IN_FLIGHT {
            st.in_flight = st.in_flight.saturating_add(1);
            let waiters = std::mem::take(&mut st.queue);
            return Entry::Lead(Slot(Some(Arc::clone(self))), waiters);
        }
        let (tx, rx) = oneshot::channel();
        st.queue.push(Waiter { keys: keys(), tx });
        Entry::Wait(rx)
    }
}

impl Batcher {
    /// One lookup of the keys `keys` lists: answered by the batch of another caller that
    /// carries it, or sent by this caller with the waiters it took, by `send(keys, waiters,
    /// timeout)`, which delivers their replies ([`Batch::deliver`]) and returns its own. A
    /// lookup that queued behind batches in flight is sent within what is left of its
    /// `timeout` (a lookup waits one operation timeout in all, queued or on the wire); with
    /// none left it is not sent, and it and its waiters get a timeout.
    pub(crate) async fn lookup<'k, I, S, Fut>(
        self: &Arc<Self>,
        keys: impl Fn() -> I,
        timeout: Duration,
        send: S,
    ) -> Result<Replies>
    where
        I: Iterator<Item = &'k str>,
        S: FnOnce(I, Vec<Waiter>, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<Replies>>,
    {
        let (slot, waiters, left) = match self.enter(|| keys().map(str::to_owned).collect()) {
            Entry::Lead(slot, waiters) => (Some(slot), waiters, timeout),
            Entry::Wait(rx) => {
                let queued = Instant::now();
                let (slot, waiters) = match rx.await {
                    Ok(Msg::Done(r)) => return r,
                    Ok(Msg::Lead(slot, waiters)) => (Some(slot), waiters),
                    // The batch carrying this lookup was dropped before it answered: send
                    // alone.
                    Err(_) => (None, Vec::new()),
                };
                (slot, waiters, timeout.saturating_sub(queued.elapsed()))
            }
        };
        let replies = if left.is_zero() {
            Batch::new(keys(), &waiters, |_| {}).deliver(waiters, Err(Error::Timeout(timeout)))
        } else {
            send(keys(), waiters, left).await
        };
        // The place on the wire is given up once the replies are delivered.
        drop(slot);
        replies
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(batcher) = self.0.take() else {
            return;
        };
        let mut st = batcher.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
        // Hand the queue to its first caller still waiting. A loop, not a recursion through
        // the handed slot's own drop: many callers may have gone away.
        loop {
            if st.queue.is_empty() || st.in_flight >= MAX_IN_FLIGHT {
                return;
            }
            let mut queue = std::mem::take(&mut st.queue);
            let rest = queue.split_off(1);
            let Some(first) = queue.pop() else {
                return;
            };
            st.in_flight = st.in_flight.saturating_add(1);
            drop(st);
            let handed = Slot(Some(Arc::clone(&batcher)));
            match first.tx.send(Msg::Lead(handed, rest)) {
                Ok(()) => return,
                Err(msg) => {
                    // That caller is gone: put the queue back, ahead of later arrivals.
                    st = batcher.lock();
                    st.in_flight = st.in_flight.saturating_sub(1);
                    if let Msg::Lead(mut handed, rest) = msg {
                        handed.0 = None;
                        let later = std::mem::replace(&mut st.queue, rest);
                        st.queue.extend(later);
                    }
                }
            }
        }
    }
}

/// One batch: every distinct key of the leader and of the waiters, in one `MGET`.
pub(crate) struct Batch {
    /// How many distinct keys were sent.
    sent: usize,
    /// For the leader, then for each waiter: the index among the sent keys of each of its
    /// keys. Empty when the leader is alone (its keys are sent as they are).
    positions: Vec<Vec<usize>>,
}

impl Batch {
    /// Passes each distinct key to `send`, in order, and remembers who asked for what.
    pub(super) fn new<'k: 'w, 'w, L>(
        leader: L,
        waiters: &'w [Waiter],
        mut send: impl FnMut(&str),
    ) -> Self
    where
        L: IntoIterator<Item = &'k str>,
    {
        let leader = leader.into_iter();
        if waiters.is_empty() {
            let mut sent = 0usize;
            leader.for_each(|k| {
                send(k);
                sent = sent.saturating_add(1);
            });
            return Batch {
                sent,
                positions: Vec::new(),
            };
        }
        let mut index: HashMap<&'w str, usize> = HashMap::with_capacity(
            leader
                .size_hint()
                .0
                .saturating_mul(waiters.len().saturating_add(1)),
        );
        let mut place = |k: &'w str| {
            let next = index.len();
            *index.entry(k).or_insert_with(|| {
                send(k);
                next
            })
        };
        let mut positions = Vec::with_capacity(waiters.len().saturating_add(1));
        // A loop, not `map(&mut place)`: the leader's keys may outlive the waiters' borrow.
        let mut own = Vec::with_capacity(leader.size_hint().0);
        for k in leader {
            own.push(place(k));
        }
        positions.push(own);
        for w in waiters {
            positions.push(w.keys.iter().map(|k| place(k)).collect());
        }
        Batch {
            sent: index.len(),
            positions,
        }
    }

    /// Hands each waiter its replies (or the error) and returns the leader's.
    pub(super) fn deliver(self, waiters: Vec<Waiter>, replies: Result<Replies>) -> Result<Replies> {
        let replies = match replies {
            Ok(r) if r.len() == self.sent => Ok(r),
            Ok(r) => Err(Error::redis(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "MGET returned a different number of replies than keys asked",
                format!("{} keys, {} replies", self.sent, r.len()),
            )))),
            Err(e) => Err(e),
        };
        if self.positions.is_empty() {
            return replies;
        }
        let mut replies = match replies {
            Ok(r) => r,
            Err(e) => {
                for w in waiters {
                    // A waiter that is gone does not need the error.
                    let _ = w.tx.send(Msg::Done(Err(duplicate(&e))));
                }
                return Err(e);
            }
        };
        // Each reply is moved to the last caller that asked for it and cloned for the others
        // (a key several callers share), so an unshared reply is never copied or re-counted.
        let mut uses = vec![0u32; replies.len()];
        self.positions
            .iter()
            .flatten()
            .for_each(|&i| uses[i] = uses[i].saturating_add(1));
        let mut pick = |pos: &[usize]| -> Replies {
            pos.iter()
                .map(|&i| {
                    uses[i] = uses[i].saturating_sub(1);
                    if uses[i] == 0 {
                        replies[i].take()
                    } else {
                        replies[i].clone()
                    }
                })
                .collect()
        };
        let mut positions = self.positions.into_iter();
        let leader = positions.next().unwrap_or_default();
        for (w, pos) in waiters.into_iter().zip(positions) {
            // A waiter that is gone does not need its replies.
            let _ = w.tx.send(Msg::Done(Ok(pick(&pos))));
        }
        Ok(pick(&leader))
    }
}

/// The same error, for another caller of the batch.
fn duplicate(e: &Error) -> Error {
    match e {
        Error::Backend(e) => Error::Backend(e.clone()),
        Error::Timeout(d) => Error::Timeout(*d),
        Error::CircuitOpen => Error::CircuitOpen,
        Error::Auth { url, reason } => Error::Auth {
            url: url.clone(),
            reason: reason.clone(),
        },
        Error::NoRuntime => Error::NoRuntime,
        other => Error::Batched(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(keys: &[&str]) -> (Waiter, oneshot::Receiver<Msg>) {
        let (tx, rx) = oneshot::channel();
        let keys = keys.iter().map(|k| (*k).to_owned()).collect();
        (Waiter { keys, tx }, rx)
    }

    fn done(mut rx: oneshot::Receiver<Msg>) -> Result<Replies> {
        match rx.try_recv() {
            Ok(Msg::Done(r)) => r,
            _ => Err(Error::Batched("no reply delivered".to_owned())),
        }
    }

    fn b(s: &str) -> Option<bytes::Bytes> {
        Some(bytes::Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn shared_keys_are_sent_once_and_each_caller_gets_its_replies_in_its_order() -> Result<()> {
        let (w1, rx1) = waiter(&["b", "t"]);
        let (w2, rx2) = waiter(&["t", "c", "a"]);
        let waiters = vec![w1, w2];
        let mut sent = Vec::new();
        let batch = Batch::new(["a", "t"], &waiters, |k| sent.push(k.to_owned()));
        assert_eq!(sent, ["a", "t", "b", "c"]);
        let leader = batch.deliver(waiters, Ok(vec![b("A"), b("T"), None, b("C")]))?;
        assert_eq!(leader, vec![b("A"), b("T")]);
        assert_eq!(done(rx1)?, vec![None, b("T")]);
        assert_eq!(done(rx2)?, vec![b("T"), b("C"), b("A")]);
        Ok(())
    }

    #[test]
    fn a_lone_leader_sends_its_keys_as_they_are() -> Result<()> {
        let mut sent = Vec::new();
        let batch = Batch::new(["a", "t", "a"], &[], |k| sent.push(k.to_owned()));
        assert_eq!(sent, ["a", "t", "a"]);
        assert_eq!(
            batch.deliver(Vec::new(), Ok(vec![b("A"), None, b("A")]))?,
            vec![b("A"), None, b("A")]
        );
        Ok(())
    }

    #[test]
    fn an_error_or_a_short_reply_reaches_every_caller() {
        let (w1, rx1) = waiter(&["b"]);
        let waiters = vec![w1];
        let batch = Batch::new(["a"], &waiters, |_| {});
        let leader = batch.deliver(waiters, Ok(vec![b("A")]));
        assert!(matches!(leader, Err(Error::Backend(_))));
        assert!(matches!(done(rx1), Err(Error::Backend(_))));

        let (w1, rx1) = waiter(&["b"]);
        let waiters = vec![w1];
        let batch = Batch::new(["a"], &waiters, |_| {});
        let d = std::time::Duration::from_millis(7);
        let leader = batch.deliver(waiters, Err(Error::Timeout(d)));
        assert!(matches!(leader, Err(Error::Timeout(x)) if x == d));
        assert!(matches!(done(rx1), Err(Error::Timeout(x)) if x == d));
    }

    fn lead(e: Entry) -> Option<(Slot, Vec<Waiter>)> {
        match e {
            Entry::Lead(slot, waiters) => Some((slot, waiters)),
            Entry::Wait(_) => None,
        }
    }

    fn wait(e: Entry) -> Option<oneshot::Receiver<Msg>> {
        match e {
            Entry::Wait(rx) => Some(rx),
            Entry::Lead(..) => None,
        }
    }

    #[test]
    fn the_queue_goes_to_the_first_caller_still_waiting() -> Result<(), String> {
        let batcher = Arc::new(Batcher::default());
        let mut slots = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            let led = lead(batcher.enter(Vec::new));
            assert!(
                matches!(&led, Some((_, w)) if w.is_empty()),
                "a free place leads"
            );
            slots.extend(led.map(|(slot, _)| slot));
        }
        let gone = wait(batcher.enter(|| vec!["gone".to_owned()]));
        let next = wait(batcher.enter(|| vec!["x".to_owned()]));
        let last = wait(batcher.enter(|| vec!["y".to_owned()]));
        assert!(
            gone.is_some() && next.is_some() && last.is_some(),
            "all places taken: wait"
        );
        assert_eq!(batcher.lock().queue.len(), 3);
        drop(gone);
        drop(slots.pop());
        let handed = next.map(|mut rx| rx.try_recv());
        let Some(Ok(Msg::Lead(slot, rest))) = handed else {
            return Err("the first caller still waiting must lead the queue".to_owned());
        };
        assert_eq!(rest.len(), 1, "the caller behind it rides along");
        assert_eq!(rest[0].keys, ["y"]);
        assert_eq!(batcher.lock().in_flight, MAX_IN_FLIGHT);
        assert!(batcher.lock().queue.is_empty());
        drop(rest);
        assert!(
            last.map(|mut rx| rx.try_recv().is_err()).unwrap_or(false),
            "dropping the batch closes its callers' channels (they then send alone)"
        );
        drop(slot);
        drop(slots);
        assert_eq!(batcher.lock().in_flight, 0, "every place is freed");
        Ok(())
    }

    #[test]
    fn a_queue_whose_callers_are_all_gone_frees_the_place() {
        let batcher = Arc::new(Batcher::default());
        let slots: Vec<Slot> = (0..MAX_IN_FLIGHT)
            .filter_map(|_| lead(batcher.enter(Vec::new)).map(|(s, _)| s))
            .collect();
        assert_eq!(slots.len(), MAX_IN_FLIGHT);
        for i in 0..1000 {
            drop(wait(batcher.enter(|| vec![i.to_string()])));
        }
        drop(slots);
        let st = batcher.lock();
        assert_eq!((st.in_flight, st.queue.len()), (0, 0));
    }
}

//! The live streams: client id -> the one open stream of that client.
//!
//! Lives on the event loop only (`Rc`, `RefCell`, no locks). A stream's [`Slot`] is a few
//! words while idle: no buffer, no timer; keepalives come from one sweep over all slots.
//! Invariants:
//! - at most one slot per client: a new stream closes the old one;
//! - a stored message is never carried here: the hub only says "the store has more", and
//!   the stream reads from the store after its cursor, so a stream always sends stored
//!   messages complete and in id order, and only committed ones;
//! - messages with a TTL of 0 (never stored) travel here, bounded by `max_bytes` per slot;
//!   past it the stream is closed as too slow.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::store::MessageRecord;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Closed {
    /// A newer stream of the same client took over.
    Replaced,
    /// The device did not read fast enough.
    Overflow,
    /// The client was deleted or the server is stopping.
    Revoked,
}

pub enum Wake {
    /// New messages were committed for this client.
    Stored,
    /// Messages with a TTL of 0: deliver now or never.
    Ephemeral(Vec<Rc<MessageRecord>>),
    Keepalive,
    Closed(Closed),
}

#[derive(Default)]
struct SlotState {
    stored: bool,
    ephemeral: Vec<Rc<MessageRecord>>,
    ephemeral_bytes: usize,
    keepalive: bool,
    closed: Option<Closed>,
}

pub struct Slot {
    state: RefCell<SlotState>,
    waker: Cell<Option<Waker>>,
    max_bytes: usize,
}

impl Slot {
    fn update(&self, f: impl FnOnce(&mut SlotState)) {
        f(&mut self.state.borrow_mut());
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Waits for the next thing the stream must do.
    pub async fn next(&self) -> Wake {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next thing the stream must do, or `Pending` (and a wake-up) when nothing is due.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Wake> {
        {
            let mut s = self.state.borrow_mut();
            if let Some(why) = s.closed {
                return Poll::Ready(Wake::Closed(why));
            }
            if std::mem::take(&mut s.stored) {
                s.keepalive = false;
                return Poll::Ready(Wake::Stored);
            }
            if !s.ephemeral.is_empty() {
                s.ephemeral_bytes = 0;
                s.keepalive = false;
                return Poll::Ready(Wake::Ephemeral(std::mem::take(&mut s.ephemeral)));
            }
            if std::mem::take(&mut s.keepalive) {
                return Poll::Ready(Wake::Keepalive);
            }
        }
        self.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

#[derive(Default)]
pub struct Hub {
    streams: RefCell<HashMap<u64, Rc<Slot>>>,
}

impl Hub {
    /// Opens the slot of a new stream, closing the client's previous stream.
    pub fn attach(&self, client_id: u64, max_bytes: usize) -> Rc<Slot> {
        let slot = Rc::new(Slot {
            state: RefCell::default(),
            waker: Cell::new(None),
            max_bytes,
        });
        if let Some(old) = self.streams.borrow_mut().insert(client_id, slot.clone()) {
            old.update(|s| s.closed = s.closed.or(Some(Closed::Replaced)));
        }
        slot
    }

    /// Forgets a stream that ended, unless a newer one already took its place.
    pub fn detach(&self, client_id: u64, slot: &Rc<Slot>) {
        let mut streams = self.streams.borrow_mut();
        if streams.get(&client_id).is_some_and(|s| Rc::ptr_eq(s, slot)) {
            streams.remove(&client_id);
        }
    }

    fn slot(&self, client_id: u64) -> Option<Rc<Slot>> {
        self.streams.borrow().get(&client_id).cloned()
    }

    /// Tells the client's live stream that the store has new messages; false if it has none.
    pub fn notify(&self, client_id: u64) -> bool {
        self.slot(client_id)
            .map(|slot| slot.update(|s| s.stored = true))
            .is_some()
    }

    /// Hands a message that is not stored to the client's live stream; false if it has none.
    pub fn deliver_now(&self, client_id: u64, record: Rc<MessageRecord>) -> bool {
        let Some(slot) = self.slot(client_id) else {
            return false;
        };
        let max = slot.max_bytes;
        slot.update(|s| {
            if s.closed.is_some() {
                return;
            }
            s.ephemeral_bytes += record.data.len() + 64;
            if s.ephemeral_bytes > max {
                s.closed = Some(Closed::Overflow);
                s.ephemeral = Vec::new();
            } else {
                s.ephemeral.push(record);
            }
        });
        true
    }

    pub fn revoke(&self, client_id: u64) {
        if let Some(slot) = self.streams.borrow_mut().remove(&client_id) {
            slot.update(|s| s.closed = s.closed.or(Some(Closed::Revoked)));
        }
    }

    pub fn revoke_all(&self) {
        for (_, slot) in self.streams.borrow_mut().drain() {
            slot.update(|s| s.closed = s.closed.or(Some(Closed::Revoked)));
        }
    }

    pub fn keepalive_all(&self) {
        for slot in self.streams.borrow().values() {
            slot.update(|s| s.keepalive = true);
        }
    }

    pub fn len(&self) -> usize {
        self.streams.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Rc<MessageRecord> {
        Rc::new(MessageRecord {
            expires_at: 0,
            priority: None,
            registration_id: "a".into(),
            collapse_key: None,
            data: vec![b'x'; 100],
        })
    }

    fn now(slot: &Slot) -> Option<Wake> {
        futures_lite::future::block_on(futures_lite::future::poll_once(slot.next()))
    }

    #[test]
    fn new_stream_replaces_old_and_old_detach_keeps_new() {
        let hub = Hub::default();
        let old = hub.attach(1, 1000);
        let new = hub.attach(1, 1000);
        assert!(matches!(now(&old), Some(Wake::Closed(Closed::Replaced))));
        hub.detach(1, &old);
        assert!(hub.notify(1));
        assert!(matches!(now(&new), Some(Wake::Stored)));
        assert!(now(&new).is_none());
    }

    #[test]
    fn notifications_coalesce_and_come_before_keepalive() {
        let hub = Hub::default();
        let slot = hub.attach(1, 1000);
        hub.keepalive_all();
        hub.notify(1);
        hub.notify(1);
        assert!(matches!(now(&slot), Some(Wake::Stored)));
        assert!(
            now(&slot).is_none(),
            "a delivery makes the keepalive unnecessary"
        );
        assert!(!hub.notify(2));
    }

    #[test]
    fn ephemeral_overflow_closes_the_stream() {
        let hub = Hub::default();
        let slot = hub.attach(1, 400);
        for _ in 0..5 {
            hub.deliver_now(1, record());
        }
        assert!(matches!(now(&slot), Some(Wake::Closed(Closed::Overflow))));
    }
}

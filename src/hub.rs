//! The live streams: client id -> the one open stream of that client.
//!
//! Lives on the event loop only (`Rc`, `RefCell`, no locks). A stream's [`Slot`] is a few
//! words while idle: no buffer, no timer; keepalives come from one sweep over all slots.
//! Invariants: at most one slot per client (a new stream closes the old one); a slot never
//! holds more than `max_bytes` of waiting payload (past it the stream is closed and the
//! device catches up from the store); only committed messages are ever delivered.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::store::MessageRecord;

pub type Delivery = (u64, Rc<MessageRecord>);

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
    Deliver(Vec<Delivery>),
    Keepalive,
    Closed(Closed),
}

#[derive(Default)]
struct SlotState {
    waiting: Vec<Delivery>,
    waiting_bytes: usize,
    /// Deliveries at or below this id were already sent from the store.
    floor: u64,
    keepalive: bool,
    closed: Option<Closed>,
}

pub struct Slot {
    state: RefCell<SlotState>,
    waker: Cell<Option<Waker>>,
    max_bytes: usize,
}

impl Slot {
    fn wake(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn push(&self, delivery: Delivery) {
        let mut s = self.state.borrow_mut();
        if s.closed.is_some() || delivery.0 <= s.floor {
            return;
        }
        s.waiting_bytes += delivery.1.data.len() + 64;
        if s.waiting_bytes > self.max_bytes {
            s.closed = Some(Closed::Overflow);
            s.waiting = Vec::new();
        } else {
            s.waiting.push(delivery);
        }
        drop(s);
        self.wake();
    }

    fn close(&self, why: Closed) {
        self.state.borrow_mut().closed.get_or_insert(why);
        self.wake();
    }

    /// Everything up to `id` has been sent; later pushes at or below it are dropped.
    pub fn set_floor(&self, id: u64) {
        let mut s = self.state.borrow_mut();
        s.floor = s.floor.max(id);
        let floor = s.floor;
        s.waiting.retain(|d| d.0 > floor);
    }

    /// Waits for the next thing the stream must do.
    pub async fn next(&self) -> Wake {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if let Some(why) = s.closed {
                return Poll::Ready(Wake::Closed(why));
            }
            if !s.waiting.is_empty() {
                s.waiting_bytes = 0;
                let floor = s.floor;
                let mut batch = std::mem::take(&mut s.waiting);
                batch.retain(|d| d.0 > floor);
                if let Some(last) = batch.last() {
                    s.floor = last.0;
                }
                s.keepalive = false;
                return Poll::Ready(Wake::Deliver(batch));
            }
            if std::mem::take(&mut s.keepalive) {
                return Poll::Ready(Wake::Keepalive);
            }
            self.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
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
            old.close(Closed::Replaced);
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

    /// Hands a committed message to the client's live stream; false if it has none.
    pub fn deliver(&self, client_id: u64, delivery: Delivery) -> bool {
        let slot = self.streams.borrow().get(&client_id).cloned();
        match slot {
            Some(slot) => {
                slot.push(delivery);
                true
            }
            None => false,
        }
    }

    pub fn revoke(&self, client_id: u64) {
        if let Some(slot) = self.streams.borrow_mut().remove(&client_id) {
            slot.close(Closed::Revoked);
        }
    }

    pub fn revoke_all(&self) {
        for (_, slot) in self.streams.borrow_mut().drain() {
            slot.close(Closed::Revoked);
        }
    }

    pub fn keepalive_all(&self) {
        for slot in self.streams.borrow().values() {
            slot.state.borrow_mut().keepalive = true;
            slot.wake();
        }
    }

    pub fn len(&self) -> usize {
        self.streams.borrow().len()
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

    #[test]
    fn new_stream_replaces_old_and_old_detach_keeps_new() {
        let hub = Hub::default();
        let old = hub.attach(1, 1000);
        let new = hub.attach(1, 1000);
        assert_eq!(old.state.borrow().closed, Some(Closed::Replaced));
        hub.detach(1, &old);
        assert!(hub.deliver(1, (5, record())));
        assert_eq!(new.state.borrow().waiting.len(), 1);
    }

    #[test]
    fn floor_drops_already_sent_and_overflow_closes() {
        let hub = Hub::default();
        let slot = hub.attach(1, 400);
        slot.set_floor(10);
        hub.deliver(1, (9, record()));
        assert!(slot.state.borrow().waiting.is_empty());
        for id in 11..20 {
            hub.deliver(1, (id, record()));
        }
        assert_eq!(slot.state.borrow().closed, Some(Closed::Overflow));
    }
}

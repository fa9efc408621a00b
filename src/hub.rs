//! The live streams: queue id -> the streams that follow that queue.
//!
//! Lives on the event loop only (`Rc`, `RefCell`, no locks). A stream's [`Slot`] is a few
//! words while idle: no buffer, no timer; keepalives come from one sweep over all slots.
//! A stream may follow several queues (an ntfy subscription to `a,b`), and a queue may have
//! several streams (two phones on one topic). Invariants:
//! - an exclusive stream (an OpenPush device's) is the only one on its queue: attaching it
//!   closes every other stream there;
//! - the store's events arrive in commit order ([`crate::store::Event`]): a group's
//!   messages while it commits ([`Hub::stage`], ids rising across groups), then "committed"
//!   for its queues ([`Hub::notify`]). Every message staged after a slot attached reaches
//!   that slot, handed over or counted in [`Wake::Messages`]'s `dropped_up_to`; the ones
//!   staged before are at most [`Hub::staged_through`] as it was at the attach. That is what
//!   a stream needs to keep its order (see `stream::position`): it takes a handed message
//!   only once it has read from the store everything up to those bounds;
//! - a slot takes "the store has more" before handed messages; staged messages past
//!   `max_bytes` are dropped from the slot, and the highest dropped id is reported with
//!   the next wake-up;
//! - messages with a TTL of 0 (never stored) travel here, bounded by `max_bytes` per slot;
//!   past it the stream is closed as too slow;
//! - a slot knows who opened its stream ([`Reader`]); when access is taken away
//!   ([`Revocation`]: the store's events, or a stream's own check once attached), the
//!   slots that lost it are closed and leave that queue at once: nothing more is handed
//!   to them, and their streams end.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::store::memory::Staged;
use crate::store::{MessageRecord, Revocation};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Closed {
    /// A newer stream of the same client took over.
    Replaced,
    /// The device did not read fast enough.
    Overflow,
    /// The client or topic was deleted, access to it was taken away, or the server is
    /// stopping.
    Revoked,
}

/// Who opened a stream: a user by its name and password or by one of its access tokens, a
/// request without a user, or a device by its key (whose stream ends only with its queue).
/// One word: the user id in the low 32 bits, the token's number above them (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reader(u64);

impl Reader {
    /// A request without a user (`anonymous_access = read-write`).
    pub const ANONYMOUS: Reader = Reader(0);
    /// A device's key: OpenPush, NextPush and autopush streams.
    pub const KEY: Reader = Reader(u64::MAX);

    /// A user (ids start at 1), or anonymous.
    pub fn of(user: Option<u64>) -> Reader {
        Reader(user.unwrap_or(0) & USER_BITS)
    }

    /// A user by one of its access tokens.
    pub fn token(user: u64, token: u64) -> Reader {
        Reader((user & USER_BITS) | ((token & (u64::MAX >> 33)) << 32))
    }

    /// Whether a stream of this reader loses its access when `revoked` does: a user's
    /// revocation takes every stream the user opened, a token's only those of that token.
    fn loses_with(self, revoked: Reader) -> bool {
        if self == Reader::KEY || revoked.0 >> 32 != 0 {
            return self == revoked;
        }
        self.0 & USER_BITS == revoked.0
    }
}

/// The bits of [`Reader`] that hold the user id.
const USER_BITS: u64 = 0xFFFF_FFFF;

impl Reader {
    /// The user who opened the stream; `None` for a device's key or a request without a
    /// user.
    pub fn user(self) -> Option<u64> {
        match self {
            Reader::KEY | Reader::ANONYMOUS => None,
            Reader(bits) => Some(bits & USER_BITS),
        }
    }
}

/// The wire protocol a stream speaks, which tells its door: kept with its slot so that the
/// live status can count streams by door (a byte in the slot's padding: free).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// An OpenPush device's `/subscribe`.
    OpenPush,
    /// An ntfy subscription (`/json`, `/sse`, `/raw`, `/ws`).
    Ntfy,
    /// A NextPush device's stream.
    NextPush,
    /// An autopush user agent's WebSocket (Firefox, Sunup).
    Autopush,
}

impl Protocol {
    /// Every protocol, in the order the live status lists them.
    pub const ALL: [Protocol; 4] = [
        Protocol::Ntfy,
        Protocol::OpenPush,
        Protocol::NextPush,
        Protocol::Autopush,
    ];

    /// Its name, as the live status shows it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::OpenPush => "OpenPush",
            Protocol::Ntfy => "ntfy",
            Protocol::NextPush => "NextPush",
            Protocol::Autopush => "autopush",
        }
    }
}

/// One live stream as the live status sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Census {
    /// Who opened it.
    pub reader: Reader,
    /// Its wire protocol.
    pub protocol: Protocol,
    /// The first of the queues it follows (a device's stream follows one).
    pub queue: u64,
}

pub enum Wake {
    /// New messages were committed for a queue of this stream.
    Stored,
    /// Messages handed over, in the order they came: those being committed and those with
    /// a TTL of 0 (deliver now or never). `dropped_up_to`: the highest id of a message
    /// being committed that the slot dropped since the last wake-up (0: none); the stream
    /// must read it from the store before it takes another handed message.
    Messages {
        handed: Vec<Handed>,
        dropped_up_to: u64,
    },
    Keepalive,
    Closed(Closed),
}

/// A message handed to a stream: its queue, its id, itself, and whether it is stored
/// (being committed) or has a TTL of 0.
pub struct Handed {
    pub queue: u64,
    pub id: u64,
    pub record: Rc<MessageRecord>,
    pub stored: bool,
}

struct SlotState {
    /// Beside the flags, in what would be padding.
    protocol: Protocol,
    stored: bool,
    handed: Vec<Handed>,
    handed_bytes: usize,
    dropped_up_to: u64,
    keepalive: bool,
    closed: Option<Closed>,
}

pub struct Slot {
    state: RefCell<SlotState>,
    waker: Cell<Option<Waker>>,
    max_bytes: usize,
    /// Who opened the stream. It costs an idle stream nothing: the slot stays in the same
    /// allocator size class (112 bytes with glibc and with musl's mallocng).
    reader: Reader,
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

    /// Why the stream must end, or `Pending` (and a wake-up on any news) while it may go on.
    /// For a stream that cannot take its next thing yet (a write is pending): it still
    /// learns at once that it was replaced or revoked, and nothing else is taken.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<Closed> {
        if let Some(why) = self.state.borrow().closed {
            return Poll::Ready(why);
        }
        self.waker.set(Some(cx.waker().clone()));
        Poll::Pending
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
            if !s.handed.is_empty() || s.dropped_up_to > 0 {
                s.handed_bytes = 0;
                s.keepalive = false;
                return Poll::Ready(Wake::Messages {
                    handed: std::mem::take(&mut s.handed),
                    dropped_up_to: std::mem::take(&mut s.dropped_up_to),
                });
            }
            if std::mem::take(&mut s.keepalive) {
                return Poll::Ready(Wake::Keepalive);
            }
        }
        self.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

/// The streams of one queue. Nearly always one (a device's own queue), which needs no
/// allocation of its own; more (a topic two phones follow) go to `more`.
#[derive(Default)]
struct Slots {
    first: Option<Rc<Slot>>,
    more: Vec<Rc<Slot>>,
}

impl Slots {
    fn push(&mut self, slot: Rc<Slot>) {
        match self.first {
            None => self.first = Some(slot),
            Some(_) => self.more.push(slot),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Rc<Slot>> {
        self.first.iter().chain(&self.more)
    }

    fn take_all(&mut self) -> impl Iterator<Item = Rc<Slot>> + use<> {
        std::mem::take(self).into_iter()
    }

    /// Takes out the slots that lose their access with `reader`'s.
    fn take_reader(&mut self, reader: Reader) -> Vec<Rc<Slot>> {
        let mut taken = Vec::new();
        for slot in std::mem::take(self) {
            if slot.reader.loses_with(reader) {
                taken.push(slot);
            } else {
                self.push(slot);
            }
        }
        taken
    }

    fn remove(&mut self, slot: &Rc<Slot>) {
        self.more.retain(|s| !Rc::ptr_eq(s, slot));
        if self.first.as_ref().is_some_and(|s| Rc::ptr_eq(s, slot)) {
            self.first = self.more.pop();
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

impl IntoIterator for Slots {
    type Item = Rc<Slot>;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Rc<Slot>>, std::vec::IntoIter<Rc<Slot>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.more)
    }
}

#[derive(Default)]
pub struct Hub {
    queues: RefCell<HashMap<u64, Slots>>,
    streams: Cell<usize>,
    /// The highest id of a message staged so far, in any queue.
    staged_through: Cell<u64>,
}

fn close(slot: &Slot, why: Closed) {
    slot.update(|s| s.closed = s.closed.or(Some(why)));
}

impl Hub {
    /// Opens the slot of a new stream of `reader` on `queues`, speaking `protocol`; an
    /// exclusive stream closes the others.
    pub fn attach(
        &self,
        queues: &[u64],
        exclusive: bool,
        reader: Reader,
        protocol: Protocol,
        max_bytes: usize,
    ) -> Rc<Slot> {
        let slot = Rc::new(Slot {
            state: RefCell::new(SlotState {
                protocol,
                stored: false,
                handed: Vec::new(),
                handed_bytes: 0,
                dropped_up_to: 0,
                keepalive: false,
                closed: None,
            }),
            waker: Cell::new(None),
            max_bytes,
            reader,
        });
        let mut map = self.queues.borrow_mut();
        for &queue in queues {
            let slots = map.entry(queue).or_default();
            if exclusive {
                for old in slots.take_all() {
                    close(&old, Closed::Replaced);
                }
            }
            slots.push(slot.clone());
        }
        self.streams.set(self.streams.get() + 1);
        slot
    }

    /// Forgets a stream that ended (it may have been removed already by a replacement).
    pub fn detach(&self, queues: &[u64], slot: &Rc<Slot>) {
        let mut map = self.queues.borrow_mut();
        for queue in queues {
            if let Some(slots) = map.get_mut(queue) {
                slots.remove(slot);
                if slots.is_empty() {
                    map.remove(queue);
                }
            }
        }
        self.streams.set(self.streams.get().saturating_sub(1));
    }

    /// The queues at or above `first` that have a stream now.
    pub fn live_queues_from(&self, first: u64) -> Vec<u64> {
        let map = self.queues.borrow();
        map.keys().copied().filter(|&q| q >= first).collect()
    }

    /// Whether a queue has a live stream.
    pub fn has_streams(&self, queue: u64) -> bool {
        self.queues.borrow().contains_key(&queue)
    }

    /// Hands the messages that a group is committing to the streams of their queues. Past
    /// a slot's `max_bytes` the slot drops what it holds of those: the commit's
    /// notification brings them from the store.
    pub fn stage(&self, messages: Vec<Staged>) {
        for (queue, id, record) in messages {
            self.staged_through.set(self.staged_through.get().max(id));
            if self.has_streams(queue) {
                self.hand(queue, id, &Rc::new(record), true);
            }
        }
    }

    /// The highest id of a message staged so far: a stream attached now is handed every
    /// later one of its queues, and must read the earlier ones from the store.
    pub fn staged_through(&self) -> u64 {
        self.staged_through.get()
    }

    /// Tells the streams of a queue that the store has new messages; false if it has none.
    pub fn notify(&self, queue: u64) -> bool {
        let map = self.queues.borrow();
        let Some(slots) = map.get(&queue) else {
            return false;
        };
        for slot in slots.iter() {
            slot.update(|s| s.stored = true);
        }
        !slots.is_empty()
    }

    /// Hands a message that is not stored to the streams of its queue; false if it has none.
    /// Past a slot's `max_bytes` the stream is closed as too slow.
    pub fn deliver_now(&self, queue: u64, id: u64, record: Rc<MessageRecord>) -> bool {
        self.hand(queue, id, &record, false)
    }

    fn hand(&self, queue: u64, id: u64, record: &Rc<MessageRecord>, stored: bool) -> bool {
        let map = self.queues.borrow();
        let Some(slots) = map.get(&queue) else {
            return false;
        };
        for slot in slots.iter() {
            let max = slot.max_bytes;
            slot.update(|s| {
                if s.closed.is_some() {
                    return;
                }
                s.handed_bytes += record.weight();
                if s.handed_bytes > max {
                    let dropped = s.handed.iter().filter(|h| h.stored).map(|h| h.id).max();
                    s.dropped_up_to = s.dropped_up_to.max(dropped.unwrap_or(0));
                    s.handed.retain(|h| !h.stored);
                    s.handed_bytes = s.handed.iter().map(|h| h.record.weight()).sum();
                    if stored {
                        s.dropped_up_to = s.dropped_up_to.max(id);
                        return;
                    }
                    s.handed_bytes += record.weight();
                    if s.handed_bytes > max {
                        s.closed = Some(Closed::Overflow);
                        s.handed = Vec::new();
                        return;
                    }
                }
                s.handed.push(Handed {
                    queue,
                    id,
                    record: record.clone(),
                    stored,
                });
            });
        }
        !slots.is_empty()
    }

    /// Ends every stream of a queue that is gone.
    pub fn revoke(&self, queue: u64) {
        let slots = self.queues.borrow_mut().remove(&queue);
        for slot in slots.into_iter().flatten() {
            close(&slot, Closed::Revoked);
        }
    }

    /// Ends the streams of `reader` on a queue it may no longer read.
    pub fn revoke_reader(&self, queue: u64, reader: Reader) {
        let mut map = self.queues.borrow_mut();
        let Some(slots) = map.get_mut(&queue) else {
            return;
        };
        let taken = slots.take_reader(reader);
        if slots.is_empty() {
            map.remove(&queue);
        }
        drop(map);
        for slot in taken {
            close(&slot, Closed::Revoked);
        }
    }

    /// Ends every stream of `reader`, on every queue.
    pub fn revoke_everywhere(&self, reader: Reader) {
        let mut taken = Vec::new();
        self.queues.borrow_mut().retain(|_, slots| {
            taken.extend(slots.take_reader(reader));
            !slots.is_empty()
        });
        for slot in taken {
            close(&slot, Closed::Revoked);
        }
    }

    /// Ends the streams that lost their access.
    pub fn revoke_access(&self, revocation: Revocation) {
        match revocation {
            Revocation::Queue(queue) => self.revoke(queue),
            Revocation::Reader { queue, user } => self.revoke_reader(queue, Reader::of(user)),
            Revocation::User(user) => self.revoke_everywhere(Reader::of(Some(user))),
            Revocation::Token { user, token } => {
                self.revoke_everywhere(Reader::token(user, token));
            }
        }
    }

    pub fn revoke_all(&self) {
        for (_, slots) in self.queues.borrow_mut().drain() {
            for slot in slots {
                close(&slot, Closed::Revoked);
            }
        }
    }

    pub fn keepalive_all(&self) {
        for slots in self.queues.borrow().values() {
            for slot in slots.iter() {
                slot.update(|s| s.keepalive = true);
            }
        }
    }

    /// Every open stream, once each: who opened it, its protocol, and one of its queues
    /// (a device's stream has one).
    pub fn census(&self) -> Vec<Census> {
        let map = self.queues.borrow();
        // A slot is held by its stream and by the entry of each queue it is on, so one on
        // several queues (an ntfy subscription to `a,b`) is counted at the first of them.
        let mut several: Vec<usize> = Vec::new();
        let mut out = Vec::with_capacity(self.streams.get());
        for (&queue, slots) in map.iter() {
            for slot in slots.iter() {
                if Rc::strong_count(slot) > 2 {
                    let address = Rc::as_ptr(slot) as usize;
                    match several.binary_search(&address) {
                        Ok(_) => continue,
                        Err(at) => several.insert(at, address),
                    }
                }
                out.push(Census {
                    reader: slot.reader,
                    protocol: slot.state.borrow().protocol,
                    queue,
                });
            }
        }
        out
    }

    /// The queues that have streams, each once per stream, sorted: how many streams follow
    /// a queue is how often it is there.
    pub fn followed_queues(&self) -> Vec<u64> {
        let map = self.queues.borrow();
        let mut out: Vec<u64> = map
            .iter()
            .flat_map(|(&queue, slots)| slots.iter().map(move |_| queue))
            .collect();
        out.sort_unstable();
        out
    }

    /// Open streams.
    pub fn len(&self) -> usize {
        self.streams.get()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Rc<MessageRecord> {
        Rc::new(MessageRecord {
            expires_at: 0,
            posted_at: 0,
            content: crate::store::Content::Json,
            priority: None,
            registration_id: "a".into(),
            collapse_key: None,
            extras: Vec::new(),
            sequence: None,
            data: vec![b'x'; 100],
        })
    }

    fn now(slot: &Slot) -> Option<Wake> {
        futures_lite::future::block_on(futures_lite::future::poll_once(slot.next()))
    }

    #[test]
    fn new_stream_replaces_old_and_old_detach_keeps_new() {
        let hub = Hub::default();
        let old = hub.attach(&[1], true, Reader::KEY, Protocol::OpenPush, 1000);
        let new = hub.attach(&[1], true, Reader::KEY, Protocol::OpenPush, 1000);
        assert!(matches!(now(&old), Some(Wake::Closed(Closed::Replaced))));
        hub.detach(&[1], &old);
        assert!(hub.notify(1));
        assert!(matches!(now(&new), Some(Wake::Stored)));
        assert!(now(&new).is_none());
    }

    #[test]
    fn shared_queue_streams_each_get_news_until_they_detach() {
        let hub = Hub::default();
        let streams: Vec<Rc<Slot>> = (0..3)
            .map(|_| hub.attach(&[1], false, Reader::KEY, Protocol::OpenPush, 1000))
            .collect();
        hub.detach(&[1], &streams[0]);
        assert!(hub.notify(1));
        assert!(
            now(&streams[0]).is_none(),
            "a detached stream hears nothing"
        );
        for slot in &streams[1..] {
            assert!(matches!(now(slot), Some(Wake::Stored)));
        }
        hub.detach(&[1], &streams[2]);
        hub.detach(&[1], &streams[1]);
        assert!(!hub.has_streams(1));
        assert!(!hub.notify(1));
    }

    #[test]
    fn notifications_coalesce_and_come_before_keepalive() {
        let hub = Hub::default();
        let slot = hub.attach(&[1], true, Reader::KEY, Protocol::OpenPush, 1000);
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
    fn closing_is_seen_without_taking_what_is_due() {
        let hub = Hub::default();
        let old = hub.attach(&[1], true, Reader::KEY, Protocol::OpenPush, 1000);
        hub.notify(1);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(old.poll_closed(&mut cx).is_pending());
        assert!(matches!(now(&old), Some(Wake::Stored)), "still due");
        let _new = hub.attach(&[1], true, Reader::KEY, Protocol::OpenPush, 1000);
        assert_eq!(old.poll_closed(&mut cx), Poll::Ready(Closed::Replaced));
    }

    #[test]
    fn ephemeral_overflow_closes_the_stream() {
        let hub = Hub::default();
        let slot = hub.attach(&[1], true, Reader::KEY, Protocol::OpenPush, 400);
        for id in 0..5 {
            hub.deliver_now(1, id, record());
        }
        assert!(matches!(now(&slot), Some(Wake::Closed(Closed::Overflow))));
    }

    #[test]
    fn staged_overflow_drops_staged_messages_only() {
        let hub = Hub::default();
        let slot = hub.attach(&[1], true, Reader::KEY, Protocol::OpenPush, 400);
        hub.deliver_now(1, 1, record());
        for id in 2..7 {
            hub.stage(vec![(1, id, (*record()).clone())]);
        }
        let Some(Wake::Messages {
            handed,
            dropped_up_to,
        }) = now(&slot)
        else {
            panic!("messages due");
        };
        let ids: Vec<(u64, bool)> = handed.iter().map(|h| (h.id, h.stored)).collect();
        assert!(ids.len() < 6 && ids[0] == (1, false), "{ids:?}");
        assert!(dropped_up_to >= 2, "{dropped_up_to}");
        hub.notify(1);
        assert!(matches!(now(&slot), Some(Wake::Stored)));
    }

    #[test]
    fn shared_queues_wake_every_follower() {
        let hub = Hub::default();
        let a = hub.attach(&[7, 8], false, Reader::KEY, Protocol::OpenPush, 1000);
        let b = hub.attach(&[8], false, Reader::KEY, Protocol::OpenPush, 1000);
        assert!(hub.notify(8));
        assert!(matches!(now(&a), Some(Wake::Stored)));
        assert!(matches!(now(&b), Some(Wake::Stored)));
        hub.detach(&[8], &b);
        assert_eq!(hub.len(), 1);
        hub.revoke(7);
        assert!(matches!(now(&a), Some(Wake::Closed(Closed::Revoked))));
    }

    fn closed(slot: &Rc<Slot>) -> bool {
        matches!(now(slot), Some(Wake::Closed(Closed::Revoked)))
    }

    #[test]
    fn taking_access_back_ends_only_the_streams_that_lost_it() {
        let hub = Hub::default();
        let (bob, alice) = (Reader::of(Some(2)), Reader::of(Some(1)));
        let bobs = hub.attach(&[7], false, bob, Protocol::OpenPush, 1000);
        let bobs_two = hub.attach(&[7, 8], false, bob, Protocol::OpenPush, 1000);
        let alices = hub.attach(&[7], false, alice, Protocol::OpenPush, 1000);
        let anonymous = hub.attach(&[7], false, Reader::ANONYMOUS, Protocol::OpenPush, 1000);
        let device = hub.attach(&[9], true, Reader::KEY, Protocol::OpenPush, 1000);
        hub.revoke_reader(7, bob);
        for slot in [&bobs, &bobs_two] {
            assert!(matches!(now(slot), Some(Wake::Closed(Closed::Revoked))));
        }
        hub.stage(vec![
            (7, 1, (*record()).clone()),
            (8, 2, (*record()).clone()),
        ]);
        assert!(matches!(now(&alices), Some(Wake::Messages { .. })));
        hub.revoke_access(Revocation::Reader {
            queue: 7,
            user: None,
        });
        assert!(matches!(
            now(&anonymous),
            Some(Wake::Closed(Closed::Revoked))
        ));
        hub.revoke_access(Revocation::User(1));
        assert!(matches!(now(&alices), Some(Wake::Closed(Closed::Revoked))));
        assert!(!hub.has_streams(7), "closed slots leave their queues");
        hub.revoke_everywhere(Reader::ANONYMOUS);
        // A token's revocation ends that token's streams; its user's ends them all.
        let (t1, t2) = (Reader::token(2, 1), Reader::token(2, 2));
        let by_t1 = hub.attach(&[7], false, t1, Protocol::OpenPush, 1000);
        let by_t2 = hub.attach(&[7], false, t2, Protocol::OpenPush, 1000);
        let by_password = hub.attach(&[7], false, Reader::of(Some(2)), Protocol::OpenPush, 1000);
        hub.revoke_access(Revocation::Token { user: 2, token: 1 });
        assert!(closed(&by_t1) && !closed(&by_t2) && !closed(&by_password));
        hub.revoke_access(Revocation::User(2));
        assert!(closed(&by_t2) && closed(&by_password));
        assert!(now(&device).is_none(), "a device's stream rests on its key");
    }

    #[test]
    fn the_census_counts_a_stream_of_several_queues_once() {
        let hub = Hub::default();
        let _ann = hub.attach(&[7, 8, 9], false, Reader::of(Some(1)), Protocol::Ntfy, 1000);
        let _ben = hub.attach(&[8], false, Reader::of(Some(2)), Protocol::Ntfy, 1000);
        let _device = hub.attach(&[3], true, Reader::KEY, Protocol::NextPush, 1000);
        let census = hub.census();
        assert_eq!(census.len(), 3, "{census:?}");
        let anns = census.iter().filter(|c| c.reader.user() == Some(1)).count();
        assert_eq!(anns, 1);
        let device = Census {
            reader: Reader::KEY,
            protocol: Protocol::NextPush,
            queue: 3,
        };
        assert!(census.contains(&device));
        assert_eq!(hub.followed_queues(), vec![3, 7, 8, 8, 9]);
        hub.revoke_reader(8, Reader::of(Some(1)));
        assert_eq!(hub.census().len(), 3, "still on 7 and 9, once");
        assert_eq!(Reader::KEY.user(), None);
        assert_eq!(Reader::ANONYMOUS.user(), None);
        assert_eq!(Reader::token(4, 9).user(), Some(4));
    }
}

//! Deterministic interleavings of the delivery core under a seeded scheduler: the store
//! thread's group commits (with failures), staged messages, deferred confirmations and
//! snapshot reads; the hub; streams that attach, read pages, take handed messages, replace
//! each other and are dropped with events their device never read; and devices that resume
//! from the last event they read. The real `Group`, `Memory`, `Deferred`, `queue`, `Hub`
//! and [`Position`] run on an in-memory redb; only the threads, channels and sockets are
//! replaced by queues that the scheduler serves in a random order. The driver of a stream
//! takes its steps in the order of `Stream::run`: a page in flight first, then a read the
//! position asks for, then the slot.
//!
//! Checked against a model at every step:
//! - the order invariant of [`Position`]: a stream sends a stored message N only when it
//!   has sent every message of its queues above its starting cursor and below N that is
//!   committed or staged by the open group;
//! - a connection's stored events leave in rising id order;
//! - at the end, once every device has resumed and drained: every message whose sender was
//!   answered `Ok` was read by its device (nothing acknowledged is lost).
//!
//! A failure names its seed; `OPENPUSH_INTERLEAVING_SEED=<seed>` replays that one alone.

use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};

use super::Position;
use crate::hub::{self, Hub, Slot, Wake};
use crate::metrics::CommitStats;
use crate::store::deferred::Deferred;
use crate::store::group::Group;
use crate::store::memory::{Memory, QueueSize};
use crate::store::queue::{self, Cursor, Destination, NewMessage};
use crate::store::{Completion, Content, Event, Unsettled, WriteJob, tables};

/// Seeds explored by `cargo test`; `OPENPUSH_INTERLEAVINGS` raises it.
const SEEDS: u64 = 400;
/// Scheduler steps per seed before the drain.
const STEPS: usize = 600;
/// Backlog page size: small, so that reads take several pages.
const PAGE: usize = 3;
/// A message weighs 66 bytes in a page here: some pages end at this before [`PAGE`].
const PAGE_BYTES: usize = 150;
const NOW: u64 = 1_000_000;

/// Devices follow queues 1 and 2 with exclusive streams (OpenPush) and confirm by
/// `Last-Event-ID`; the topic follower reads queues 3 and 4 on one shared stream (ntfy) and
/// resumes with `since=`; the user agent follows queue 5 with an exclusive stream that
/// starts from the beginning (autopush `hello`) and acks most messages one by one.
const DEVICE_QUEUES: [u64; 2] = [1, 2];
const TOPIC_QUEUES: [u64; 2] = [3, 4];
const AGENT_QUEUE: u64 = 5;
const ALL_QUEUES: [u64; 5] = [1, 2, 3, 4, 5];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Post,
    StoreJob,
    Commit,
    FailGroup,
    LoopEvent,
    StreamStep,
    ReadEvent,
    Reconnect,
}

const ACTIONS: [Action; 8] = [
    Action::Post,
    Action::StoreJob,
    Action::Commit,
    Action::FailGroup,
    Action::LoopEvent,
    Action::StreamStep,
    Action::ReadEvent,
    Action::Reconnect,
];
/// Each action's usual weight; a seed scales each by 1/4 to 2, so that some seeds make
/// large groups, slow streams or frequent reconnects.
const WEIGHTS: [u64; 8] = [20, 20, 6, 1, 12, 18, 14, 6];

enum Job {
    Post { queue: u64 },
    Confirm { queue: u64, up_to: u64 },
    Ack { queue: u64, id: u64 },
    Read { stream: usize },
}

/// What the sender of a post learned: (queue, id, answered Ok).
type Answer = (u64, u64, bool);

/// The store thread, stepped by the scheduler.
struct StoreThread {
    db: crate::store::kv::Database,
    memory: Memory,
    deferred: Deferred,
    group: Option<Group>,
    settled_through: u64,
    inbox: VecDeque<Job>,
    events: async_channel::Sender<Event>,
    answers: mpsc::Sender<Answer>,
    /// (queue, id) of each message as its write stores it, for the model.
    stored: mpsc::Sender<(u64, u64)>,
    stats: CommitStats,
}

impl StoreThread {
    fn post(&self, queue: u64) -> WriteJob {
        let (answers, stored) = (self.answers.clone(), self.stored.clone());
        Box::new(move |txn| {
            let to = Destination {
                queue,
                registration_id: "app".into(),
                limit: QueueSize {
                    messages: 10_000,
                    bytes: u64::MAX,
                },
            };
            let message = NewMessage {
                content: Content::Json,
                data: b"{}".to_vec(),
                priority: None,
                ttl_secs: 3600,
                collapse_key: None,
                extras: Vec::new(),
                sequence: None,
            };
            let id = txn
                .and_then(|(t, m)| {
                    queue::enqueue(
                        t,
                        m,
                        to,
                        message,
                        &crate::store::budget::Budget::UNLIMITED,
                        NOW,
                    )
                })
                .map(|enqueued| enqueued.expect("no refusal").id);
            if let Ok(id) = id {
                let _ = stored.send((queue, id));
            }
            let failed = id.is_err();
            let done: Completion = Box::new(move |outcome| {
                if let Ok(id) = id {
                    let _ = answers.send((queue, id, outcome.is_ok()));
                }
            });
            (failed, done)
        })
    }

    fn begin(&mut self) -> &mut Group {
        let (db, memory, deferred) = (&self.db, &mut self.memory, &mut self.deferred);
        self.group
            .get_or_insert_with(|| Group::begin(Ok(db), memory, deferred))
    }

    fn write(&mut self, job: WriteJob) {
        self.begin();
        let group = self.group.as_mut().expect("begun");
        group.run(
            job,
            &mut self.memory,
            &mut self.deferred,
            Some(&self.events),
        );
    }

    /// Commits the open group, or (`fail`) rolls it back after a write that fails.
    fn end_group(&mut self, fail: bool) {
        if fail {
            self.write(Box::new(|_| (true, Box::new(|_| {}))));
        }
        let Some(group) = self.group.take() else {
            return;
        };
        let _ = group.commit(&mut self.memory, Some(&self.events), &self.stats);
        self.settled_through = self.memory.last_handed_out();
        self.deferred.settled();
    }
}

struct Stream {
    queues: Vec<u64>,
    slot: Rc<Slot>,
    position: Position,
    /// The cursor it started from: messages at or below it are not its to send.
    start_after: u64,
    reading: bool,
    reply: Option<queue::Page>,
    /// Stored ids written to the socket and not yet read by the device.
    out: VecDeque<u64>,
    sent: BTreeSet<u64>,
    ended: bool,
}

/// A device (or the topic follower) and its current stream.
struct Reader {
    queues: Vec<u64>,
    exclusive: bool,
    /// Acks messages one by one and always starts from the beginning (autopush).
    acks: bool,
    stream: Option<usize>,
    last_read: u64,
    /// The last stored id read on the current connection.
    connection_last: u64,
    read: BTreeSet<u64>,
}

struct World {
    rng: Rng,
    store: StoreThread,
    events: async_channel::Receiver<Event>,
    answers: mpsc::Receiver<Answer>,
    stored: mpsc::Receiver<(u64, u64)>,
    hub: Hub,
    slot_bytes: usize,
    weights: [u64; 8],
    /// Posts that go to the first queue rather than a random one, in percent.
    hot_queue_percent: u64,
    streams: Vec<Stream>,
    readers: Vec<Reader>,
    /// Per queue: messages committed, or staged by the open group.
    present: Vec<BTreeSet<u64>>,
    staged_open: Vec<(u64, u64)>,
    acknowledged: Vec<(u64, u64)>,
    trace: Vec<String>,
}

impl World {
    fn new(seed: u64) -> World {
        let (events_to, events) = async_channel::unbounded();
        let (answers_to, answers) = mpsc::channel();
        let (stored_to, stored) = mpsc::channel();
        let mut memory = Memory::default();
        memory.staging = true;
        let db = tables::in_memory();
        memory.reserve_ids(&db).expect("reserve");
        let settled_through = memory.last_handed_out();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        // A handed message takes 66 bytes of a slot here: 140 holds two.
        let slot_bytes = if rng.chance(40) { 140 } else { 1 << 20 };
        let weights = WEIGHTS.map(|w| (w * (1 + rng.below(8)) / 4).max(1));
        let hot_queue_percent = rng.below(80);
        let readers = DEVICE_QUEUES
            .iter()
            .map(|&q| (vec![q], true, false))
            .chain([(TOPIC_QUEUES.to_vec(), false, false)])
            .chain([(vec![AGENT_QUEUE], true, true)])
            .map(|(queues, exclusive, acks)| Reader {
                queues,
                exclusive,
                acks,
                stream: None,
                last_read: 0,
                connection_last: 0,
                read: BTreeSet::new(),
            })
            .collect();
        World {
            rng,
            store: StoreThread {
                db,
                memory,
                deferred: Deferred::default(),
                group: None,
                settled_through,
                inbox: VecDeque::new(),
                events: events_to,
                answers: answers_to,
                stored: stored_to,
                stats: CommitStats::default(),
            },
            events,
            answers,
            stored,
            hub: Hub::default(),
            slot_bytes,
            weights,
            hot_queue_percent,
            streams: Vec::new(),
            readers,
            present: vec![BTreeSet::new(); ALL_QUEUES.len() + 1],
            staged_open: Vec::new(),
            acknowledged: Vec::new(),
            trace: Vec::new(),
        }
    }

    fn note(&mut self, what: String) {
        self.trace.push(what);
    }

    fn fail(&self, why: String) -> ! {
        let tail = self.trace.len().saturating_sub(60);
        panic!("{why}\nlast steps:\n  {}", self.trace[tail..].join("\n  "));
    }

    /// The store thread takes its next job.
    fn store_job(&mut self) {
        let Some(job) = self.store.inbox.pop_front() else {
            return;
        };
        match job {
            Job::Post { queue } => {
                let job = self.store.post(queue);
                self.store.write(job);
                while let Ok((queue, id)) = self.stored.try_recv() {
                    self.present[queue as usize].insert(id);
                    self.staged_open.push((queue, id));
                }
                self.collect_answers();
            }
            Job::Confirm { queue, up_to } => {
                self.store.deferred.confirm(queue, up_to);
                let present = &mut self.present[queue as usize];
                *present = present.split_off(&(up_to + 1));
            }
            Job::Ack { queue, id } => {
                self.store.deferred.ack(queue, id, "app".into());
                self.present[queue as usize].remove(&id);
            }
            Job::Read { stream } => {
                let s = &self.streams[stream];
                let snapshot = self.store.db.begin_read().expect("read");
                let unsettled = Unsettled {
                    deferred: &self.store.deferred,
                    settled_through: self.store.settled_through,
                    snapshot: true,
                    handed_out_through: self.store.settled_through,
                };
                let page = queue::backlog(
                    &snapshot,
                    &unsettled,
                    &s.queues,
                    &s.position.cursor,
                    queue::PageLimit {
                        messages: PAGE,
                        bytes: PAGE_BYTES,
                    },
                    NOW,
                )
                .expect("backlog");
                self.note(format!(
                    "store: read for stream {stream} after {} -> {:?} more {} complete {}",
                    s.position.cursor.after,
                    page.messages.iter().map(|m| m.1).collect::<Vec<_>>(),
                    page.more,
                    page.complete_through
                ));
                self.streams[stream].reply = Some(page);
            }
        }
    }

    fn collect_answers(&mut self) {
        while let Ok((queue, id, ok)) = self.answers.try_recv() {
            if ok {
                self.acknowledged.push((queue, id));
            }
        }
    }

    fn end_group(&mut self, fail: bool) {
        if self.store.group.is_none() {
            if self.store.deferred.is_empty() {
                return;
            }
            self.store.begin();
        }
        self.store.end_group(fail);
        self.collect_answers();
        let staged = std::mem::take(&mut self.staged_open);
        if fail {
            for (queue, id) in staged {
                self.present[queue as usize].remove(&id);
            }
        }
        self.note(format!(
            "store: group {} (settled through {})",
            if fail { "failed" } else { "committed" },
            self.store.settled_through
        ));
    }

    /// The event loop takes the store's next event.
    fn loop_event(&mut self) {
        let Ok(event) = self.events.try_recv() else {
            return;
        };
        match event {
            Event::Staged(messages) => {
                self.note(format!(
                    "loop: staged {:?}",
                    messages.iter().map(|m| m.1).collect::<Vec<_>>()
                ));
                self.hub.stage(messages);
            }
            Event::Revoked(_) | Event::Resync | Event::PassedOn(_) => {}
            Event::Committed(queues) => {
                self.note(format!("loop: committed {queues:?}"));
                for queue in queues {
                    self.hub.notify(queue);
                }
            }
        }
    }

    /// A new stream for reader `r`, resuming after the last event it read (or, now and
    /// then, from the start).
    fn connect(&mut self, r: usize, drop_old: bool) {
        if drop_old && let Some(old) = self.readers[r].stream.take() {
            self.end_stream(old, "dropped by its client");
        }
        let resume = self.rng.chance(85) || !self.readers[r].exclusive;
        let after = if resume && !self.readers[r].acks {
            self.readers[r].last_read
        } else {
            0
        };
        let reader = &self.readers[r];
        let queues = reader.queues.clone();
        if reader.exclusive && after > 0 {
            self.store.inbox.push_back(Job::Confirm {
                queue: queues[0],
                up_to: after,
            });
        }
        let slot = self.hub.attach(
            &queues,
            reader.exclusive,
            hub::Reader::KEY,
            hub::Protocol::OpenPush,
            self.slot_bytes,
        );
        let cursor = Cursor {
            after,
            posted_since: 0,
        };
        let position = Position::new(cursor, self.hub.staged_through());
        let id = self.streams.len();
        self.note(format!(
            "reader {r}: stream {id} attached after {after} (staged through {})",
            self.hub.staged_through()
        ));
        self.streams.push(Stream {
            queues,
            slot,
            position,
            start_after: after,
            reading: false,
            reply: None,
            out: VecDeque::new(),
            sent: BTreeSet::new(),
            ended: false,
        });
        self.readers[r].stream = Some(id);
        self.readers[r].connection_last = 0;
    }

    fn end_stream(&mut self, s: usize, why: &str) {
        let stream = &mut self.streams[s];
        if !stream.ended {
            stream.ended = true;
            self.hub.detach(&stream.queues, &stream.slot);
            self.note(format!("stream {s} ended: {why}"));
        }
    }

    fn send(&mut self, s: usize, id: u64) {
        let stream = &self.streams[s];
        for &queue in &stream.queues {
            let skipped = self.present[queue as usize]
                .range(stream.start_after + 1..id)
                .find(|m| !stream.sent.contains(m));
            if let Some(m) = skipped {
                self.fail(format!(
                    "stream {s} sends {id} before {m} of queue {queue}, which it has not sent"
                ));
            }
        }
        let stream = &mut self.streams[s];
        stream.sent.insert(id);
        stream.out.push_back(id);
    }

    /// One step of stream `s`, in the order of `Stream::run`.
    fn stream_step(&mut self, s: usize) {
        if self.streams[s].ended {
            return;
        }
        if let Some(page) = self.streams[s].reply.take() {
            self.streams[s].reading = false;
            for &(_, id, _) in &page.messages {
                self.send(s, id);
            }
            self.streams[s].position.page_read(&page);
            return;
        }
        if self.streams[s].reading {
            return;
        }
        if self.streams[s].position.take_read() {
            self.streams[s].reading = true;
            self.store.inbox.push_back(Job::Read { stream: s });
            return;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.streams[s].slot.poll_next(&mut cx) {
            Poll::Ready(Wake::Stored) => self.streams[s].position.stored(),
            Poll::Ready(Wake::Messages {
                handed,
                dropped_up_to,
            }) => {
                self.streams[s].position.dropped(dropped_up_to);
                for message in &handed {
                    let take = self.streams[s].position.take(message);
                    self.note(format!(
                        "stream {s}: handed {} {}",
                        message.id,
                        if take { "sent" } else { "skipped" }
                    ));
                    if take {
                        self.send(s, message.id);
                    }
                }
            }
            Poll::Ready(Wake::Closed(why)) => self.end_stream(s, &format!("{why:?}")),
            Poll::Ready(Wake::Keepalive) | Poll::Pending => {}
        }
    }

    /// Reader `r` reads the next event its stream wrote.
    fn read_event(&mut self, r: usize) {
        let Some(s) = self.readers[r].stream else {
            return;
        };
        let Some(id) = self.streams[s].out.pop_front() else {
            return;
        };
        let reader = &mut self.readers[r];
        if id <= reader.connection_last {
            let prior = reader.connection_last;
            self.fail(format!("reader {r} read {id} after {prior} on stream {s}"));
        }
        reader.connection_last = id;
        reader.last_read = id;
        reader.read.insert(id);
        if reader.acks && self.rng.chance(70) {
            let queue = reader.queues[0];
            self.store.inbox.push_back(Job::Ack { queue, id });
        }
    }

    fn step(&mut self) {
        let total: u64 = self.weights.iter().sum();
        let mut pick = self.rng.below(total);
        let action = ACTIONS
            .iter()
            .zip(&self.weights)
            .find(|&(_, &w)| {
                let here = pick < w;
                pick = pick.saturating_sub(w);
                here
            })
            .map_or(Action::Post, |(&a, _)| a);
        let readers = self.readers.len() as u64;
        match action {
            Action::Post => {
                let queue = if self.rng.chance(self.hot_queue_percent) {
                    ALL_QUEUES[0]
                } else {
                    ALL_QUEUES[self.rng.below(ALL_QUEUES.len() as u64) as usize]
                };
                self.store.inbox.push_back(Job::Post { queue });
            }
            Action::StoreJob => self.store_job(),
            Action::Commit => self.end_group(false),
            Action::FailGroup => self.end_group(true),
            Action::LoopEvent => self.loop_event(),
            Action::StreamStep => {
                let live: Vec<usize> = (0..self.streams.len())
                    .filter(|&s| !self.streams[s].ended)
                    .collect();
                if !live.is_empty() {
                    let s = live[self.rng.below(live.len() as u64) as usize];
                    self.stream_step(s);
                }
            }
            Action::ReadEvent => {
                let r = self.rng.below(readers) as usize;
                self.read_event(r);
            }
            Action::Reconnect => {
                let r = self.rng.below(readers) as usize;
                let drop_old = self.rng.chance(60);
                self.connect(r, drop_old);
            }
        }
    }

    /// Stops posting, lets everything settle, resumes every reader once more and reads
    /// until nothing moves.
    fn drain(&mut self) {
        self.store
            .inbox
            .retain(|job| !matches!(job, Job::Post { .. }));
        self.settle();
        for r in 0..self.readers.len() {
            if let Some(s) = self.readers[r].stream.take() {
                self.end_stream(s, "dropped for the drain");
            }
            self.connect(r, true);
        }
        self.settle();
    }

    fn settle(&mut self) {
        for _ in 0..10_000 {
            let before = self.trace.len();
            while !self.store.inbox.is_empty() {
                self.store_job();
            }
            self.end_group(false);
            while !self.events.is_empty() {
                self.loop_event();
            }
            for s in 0..self.streams.len() {
                self.stream_step(s);
            }
            for r in 0..self.readers.len() {
                while self.readers[r]
                    .stream
                    .is_some_and(|s| !self.streams[s].out.is_empty())
                {
                    self.read_event(r);
                }
            }
            if self.trace.len() == before && self.store.inbox.is_empty() {
                return;
            }
        }
        self.fail("the drain does not settle".into());
    }

    fn check_nothing_lost(&self) {
        for &(queue, id) in &self.acknowledged {
            let reader = self
                .readers
                .iter()
                .find(|r| r.queues.contains(&queue))
                .expect("every queue has a reader");
            if !reader.read.contains(&id) {
                self.fail(format!(
                    "message {id} of queue {queue} was acknowledged and never read"
                ));
            }
        }
    }
}

fn run(seed: u64) {
    let mut world = World::new(seed);
    for r in 0..world.readers.len() {
        world.connect(r, true);
    }
    for _ in 0..STEPS {
        world.step();
    }
    world.drain();
    world.check_nothing_lost();
}

#[test]
fn no_interleaving_of_commits_attaches_and_reads_skips_a_message() {
    let seeds = match std::env::var("OPENPUSH_INTERLEAVING_SEED") {
        Ok(one) => {
            let seed = one.parse().expect("a seed");
            seed..seed + 1
        }
        Err(_) => {
            let n = std::env::var("OPENPUSH_INTERLEAVINGS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(SEEDS);
            1..n + 1
        }
    };
    for seed in seeds {
        if let Err(panic) = std::panic::catch_unwind(|| run(seed)) {
            let why = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            panic!("seed {seed} (OPENPUSH_INTERLEAVING_SEED={seed}): {why}");
        }
    }
}

//! Crash consistency: `POST /message` must answer 200 only once the message is committed.
//!
//! Guards against acknowledging a message that a `kill -9` then loses (an answer sent
//! before the group commit is durable, or a group whose commit failed still answered),
//! and against storing a message whose post was refused with an error status.

use crate::support;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::*;

/// Rounds of post-and-kill; `OPENPUSH_CRASH_ROUNDS` raises it (`scripts/crash-test.sh`).
const ROUNDS: usize = 5;
const THREADS: usize = 4;

fn rounds() -> usize {
    std::env::var("OPENPUSH_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS)
}

/// Acknowledged posts after which round `round` kills the server: varies from 20 to 300,
/// so kills land at different points of the group-commit cycle.
fn kill_after(round: usize, seed: u64) -> usize {
    let x = (seed ^ round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    20 + (x >> 33) as usize % 281
}

/// What a poster saw for one message.
enum Outcome {
    Acknowledged(u64),
    Refused(u16),
    /// The connection broke: the message may or may not be stored.
    Unknown,
}

/// Posts without panicking on connection errors.
fn try_post(addr: SocketAddr, body: &str) -> Outcome {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return Outcome::Unknown;
    };
    let _ = conn.set_read_timeout(Some(TIMEOUT));
    let raw = format!(
        "POST /message HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if conn.write_all(raw.as_bytes()).is_err() {
        return Outcome::Unknown;
    }
    let mut data = Vec::new();
    let _ = conn.read_to_end(&mut data);
    match parse_response(&data) {
        Some(r) if r.status == 200 => Outcome::Acknowledged(r.json_field("id").parse().unwrap()),
        Some(r) => Outcome::Refused(r.status),
        None => Outcome::Unknown,
    }
}

#[test]
fn every_acknowledged_message_is_delivered_after_kill9_during_a_burst() {
    let mut server = Server::start_with("kill9", "posts_per_sec_per_token = 0");
    let rounds = rounds();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let (key, _) = server.device("ann");
    let tokens: Vec<String> = (0..THREADS)
        .map(|t| server.add_app(&key, &format!("app{t}x")))
        .collect();
    let mut confirmed = 0;
    let (mut total_acked, mut total_delivered, mut total_unknown, mut total_refused) = (0, 0, 0, 0);
    for round in 0..rounds {
        let kill_at = kill_after(round, seed);
        let acked = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let addr = server.addr;
        // payload "r-t-n" -> what the poster saw
        let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
        std::thread::scope(|s| {
            let posters: Vec<_> = tokens
                .iter()
                .enumerate()
                .map(|(t, token)| {
                    let (acked, stop) = (&acked, &stop);
                    s.spawn(move || {
                        let mut seen = Vec::new();
                        for n in 0.. {
                            let tag = format!("{round}-{t}-{n}");
                            let body = format!(r#"{{"token":"{token}","data":{{"tag":"{tag}"}}}}"#);
                            let outcome = try_post(addr, &body);
                            let broken = matches!(outcome, Outcome::Unknown);
                            if let Outcome::Acknowledged(_) = outcome {
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                            seen.push((tag, outcome));
                            if broken || stop.load(Ordering::SeqCst) {
                                break;
                            }
                        }
                        seen
                    })
                })
                .collect();
            let deadline = Instant::now() + TIMEOUT;
            while acked.load(Ordering::SeqCst) < kill_at {
                assert!(Instant::now() < deadline, "posts too slow");
                std::thread::sleep(Duration::from_millis(1));
            }
            server.kill9();
            stop.store(true, Ordering::SeqCst);
            for p in posters {
                outcomes.extend(p.join().unwrap());
            }
        });
        server.restart();
        let mut sse = server.subscribe(&key, Some(confirmed));
        let mut delivered: BTreeMap<String, u64> = BTreeMap::new();
        // The backlog comes before anything live: read up to a sentinel posted now.
        let sentinel = format!("sentinel-{round}");
        let body = format!(
            r#"{{"token":"{}","data":{{"tag":"{sentinel}"}}}}"#,
            tokens[0]
        );
        assert!(matches!(
            try_post(server.addr, &body),
            Outcome::Acknowledged(_)
        ));
        loop {
            let e = sse.next();
            let tag = json_field(&e.data, "tag").unwrap();
            let id = e.id.unwrap();
            assert!(
                id > confirmed,
                "confirmed or repeated message {id} came back"
            );
            confirmed = id;
            if tag == sentinel {
                break;
            }
            delivered.insert(tag, id);
        }
        let mut lost = BTreeSet::new();
        let mut acked_here = 0;
        for (tag, outcome) in &outcomes {
            match outcome {
                Outcome::Acknowledged(id) => {
                    acked_here += 1;
                    match delivered.get(tag) {
                        Some(got) => assert_eq!(got, id, "{tag} delivered under another id"),
                        None => {
                            lost.insert(tag.clone());
                        }
                    }
                }
                Outcome::Refused(status) => {
                    total_refused += 1;
                    assert!(
                        !delivered.contains_key(tag),
                        "{tag} got {status} yet was stored"
                    )
                }
                Outcome::Unknown => total_unknown += 1,
            }
        }
        for tag in delivered.keys() {
            assert!(outcomes.contains_key(tag), "{tag} was never posted");
        }
        eprintln!(
            "kill -9 round {round}: {acked_here} acknowledged, {} delivered, {} lost",
            delivered.len(),
            lost.len()
        );
        assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
        assert!(acked_here >= kill_at);
        total_acked += acked_here;
        total_delivered += delivered.len();
        drop(sse);
    }
    eprintln!(
        "kill -9: {rounds} rounds (seed {seed}), {total_acked} acknowledged, {total_delivered} delivered, \
         {total_unknown} in flight at the kill, {total_refused} refused, 0 lost"
    );
}

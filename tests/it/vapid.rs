//! What a VAPID signature check may cost: pushes to a `/wpush/v2/` endpoint from strangers
//! (forwarded addresses that are not the host's) against the budget of signature
//! verifications. A token that fails the cheap checks (key, shape, `aud`, `exp`) is refused
//! without one; a stranger's well-formed token takes one from the budget, and past it is
//! `429`; the endpoint's known signer (an address whose signature verified) is never kept
//! waiting by strangers, until it sends a bad signature itself.

use crate::support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::conn::Conn;
use support::now_secs;
use support::push::send;
use support::vapid::{AppServer, v2_endpoint};
use support::{Response, Server};

/// `vapid_verifications_per_sec` and `vapid_verification_burst` by default.
const RATE: f64 = 2.0;
const BURST: f64 = 20.0;

/// A forwarded address of its own for each `n` (IPv6: one /64 each), none of them local.
fn stranger(n: usize) -> String {
    format!("2001:db8:{:x}:{:x}::1", n / 0x10000 + 1, n % 0x10000)
}

/// A push with a body, from `from` (forwarded by the trusted local proxy) unless it is empty.
fn push(s: &Server, path: &str, from: &str, authorization: &str) -> Response {
    let host = s.addr.to_string();
    let mut headers = vec![
        ("Host", host.as_str()),
        ("Content-Encoding", "aes128gcm"),
        ("TTL", "60"),
        ("Authorization", authorization),
    ];
    if !from.is_empty() {
        headers.push(("X-Forwarded-For", from));
    }
    send(s.addr, "POST", path, &headers, b"signed")
}

#[track_caller]
fn assert_accepted(r: &Response) {
    assert_eq!(r.status, 201, "{}", r.text());
}

#[track_caller]
fn assert_budget_spent(r: &Response) {
    r.assert_error(429);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
}

/// A token with the endpoint's key, its origin and a valid `exp`, signed by another key:
/// it passes every check but the signature's.
fn forged(app: &AppServer, origin: &str) -> String {
    let forger = AppServer::new(99);
    format!(
        "vapid t={}, k={}",
        forger.jwt(origin, now_secs() + 600),
        app.public()
    )
}

#[test]
fn a_flood_of_forged_signatures_spends_a_bounded_number_of_verifications() {
    // Regression: every forged push cost an ECDSA verification (~10 health checks), bounded
    // only per address, so strangers from many addresses could fill the event loop.
    let s = Server::start("vapid-flood");
    let app = AppServer::new(7);
    let (_agent, path) = v2_endpoint(&s, &app);
    let origin = format!("http://{}", s.addr);
    let signer = "203.0.113.5";
    assert_accepted(&push(&s, &path, signer, &app.vapid(&origin)));

    let newcomer = AppServer::new(8);
    let (_other, other_path) = v2_endpoint(&s, &newcomer);
    let newcomer_push = || push(&s, &other_path, "192.0.2.9", &newcomer.vapid(&origin));

    let forged = forged(&app, &origin);
    let started = Instant::now();
    let mut statuses = BTreeMap::<u16, usize>::new();
    for n in 0..600 {
        let r = push(&s, &path, &stranger(n % 60), &forged);
        match r.status {
            401 => r.assert_error(401),
            _ => assert_budget_spent(&r),
        }
        *statuses.entry(r.status).or_default() += 1;
        if n % 100 == 99 {
            assert_accepted(&push(&s, &path, signer, &app.vapid(&origin)));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let verified = statuses.get(&401).copied().unwrap_or_default();
    eprintln!("600 forged pushes in {elapsed:.1} s: {statuses:?}");
    assert!(
        verified as f64 <= BURST + RATE * elapsed + 1.0,
        "{verified} verifications in {elapsed:.1} s"
    );

    // The flood goes on until a stranger takes the next token that comes; right after, none
    // is left for a new signer, who waits with the strangers and is told how long.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while push(&s, &path, &stranger(n % 60), &forged).status != 401 {
        assert!(Instant::now() < deadline, "no token came back in 5 s");
        n += 1;
    }
    let r = newcomer_push();
    assert_budget_spent(&r);
    let wait = r.header("retry-after").unwrap().parse::<u64>().unwrap();
    assert!(wait <= 1, "Retry-After {wait}");
    std::thread::sleep(Duration::from_secs(wait));
    assert_accepted(&newcomer_push());
}

#[test]
fn only_well_formed_tokens_of_strangers_spend_the_verification_budget() {
    let s = Server::start_with(
        "vapid-budget",
        "vapid_verifications_per_sec = 0.001\nvapid_verification_burst = 2",
    );
    let app = AppServer::new(7);
    let other = AppServer::new(9);
    let (_agent, path) = v2_endpoint(&s, &app);
    let origin = format!("http://{}", s.addr);
    let forged = forged(&app, &origin);

    let cheap = [
        (401, String::new()),
        (401, "Bearer abc".to_owned()),
        (401, app.vapid_until(&origin, now_secs() - 10)),
        (401, app.vapid_until(&origin, now_secs() + 25 * 3600)),
        (401, app.vapid("http://elsewhere.example")),
        (401, format!("vapid t=not.a.jwt, k={}", app.public())),
        (401, forged.replace(", k=", "AAAA, k=")),
        (
            401,
            format!("vapid t={}, k={}", "a".repeat(4096), app.public()),
        ),
        (403, other.vapid(&origin)),
    ];
    for n in 0..45 {
        let (status, auth) = &cheap[n % cheap.len()];
        let r = push(&s, &path, &stranger(n), auth);
        r.assert_error(*status);
    }

    let signer = "203.0.113.5";
    assert_accepted(&push(&s, &path, signer, &app.vapid(&origin)));
    push(&s, &path, &stranger(100), &forged).assert_error(401);
    assert_budget_spent(&push(&s, &path, &stranger(101), &forged));
    assert_budget_spent(&push(&s, &path, "192.0.2.9", &app.vapid(&origin)));
    for _ in 0..5 {
        assert_accepted(&push(&s, &path, signer, &app.vapid(&origin)));
    }

    push(&s, &path, signer, &forged).assert_error(401);
    assert_budget_spent(&push(&s, &path, signer, &app.vapid(&origin)));

    assert_accepted(&push(&s, &path, "", &app.vapid(&origin)));
    push(&s, &path, "", &forged).assert_error(401);
}

/// CPU seconds the process has used so far (user and system, all threads).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Runs `threads` keep-alive clients for `secs`, each sending `request(n)` (paced so that
/// all together offer `rate` requests a second, or as fast as answers come with `None`);
/// returns the requests answered and the server's CPU seconds per second.
fn flood(
    s: &Server,
    request: &(dyn Fn(usize) -> Vec<u8> + Sync),
    rate: Option<f64>,
    secs: f64,
) -> (usize, f64, BTreeMap<u16, usize>) {
    const THREADS: usize = 2;
    let addr: SocketAddr = s.addr;
    let cpu_before = cpu_secs(s.pid());
    let started = Instant::now();
    let results: Vec<BTreeMap<u16, usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let mut conn = Conn::open(addr);
                    let mut statuses = BTreeMap::new();
                    let mut sent = 0usize;
                    loop {
                        let now = started.elapsed().as_secs_f64();
                        if now >= secs {
                            return statuses;
                        }
                        if let Some(rate) = rate {
                            let due = sent as f64 * THREADS as f64 / rate;
                            if due > now {
                                std::thread::sleep(Duration::from_secs_f64(due - now));
                            }
                        }
                        conn.send(&request(sent * THREADS + t));
                        let r = conn.response();
                        *statuses.entry(r.status).or_insert(0) += 1;
                        sent += 1;
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let cpu = (cpu_secs(s.pid()) - cpu_before) / wall;
    let mut statuses = BTreeMap::new();
    for part in results {
        for (status, n) in part {
            *statuses.entry(status).or_insert(0) += n;
        }
    }
    (statuses.values().sum(), cpu, statuses)
}

/// What a stranger can make the server spend: health checks and forged pushes from many
/// addresses, at fixed rates and as fast as answers come. By hand, in either build:
/// `cargo test [--release] --test it vapid::cpu_under -- --ignored --nocapture`.
#[test]
#[ignore]
fn cpu_under_a_flood_of_forged_signatures() {
    let s = Server::start("vapid-cpu");
    let app = AppServer::new(7);
    let (_agent, path) = v2_endpoint(&s, &app);
    let origin = format!("http://{}", s.addr);
    let forged = forged(&app, &origin);
    let host = s.addr;
    let health = |n: usize| {
        format!(
            "GET /health HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {}\r\n\r\n",
            stranger(n)
        )
        .into_bytes()
    };
    let forged_push = |n: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {}\r\n\
             Authorization: {forged}\r\nContent-Encoding: aes128gcm\r\nTTL: 60\r\n\
             Content-Length: 6\r\n\r\nsigned",
            stranger(n)
        )
        .into_bytes()
    };
    let secs = 5.0;
    let before = cpu_secs(s.pid());
    std::thread::sleep(Duration::from_secs_f64(secs));
    eprintln!(
        "{:>12}: server CPU {:.3} s/s",
        "idle",
        (cpu_secs(s.pid()) - before) / secs
    );
    for (what, request) in [
        (
            "health check",
            &health as &(dyn Fn(usize) -> Vec<u8> + Sync),
        ),
        ("forged push", &forged_push),
    ] {
        for rate in [Some(200.0), Some(500.0), None] {
            let (answered, cpu, statuses) = flood(&s, request, rate, secs);
            let per_sec = answered as f64 / secs;
            eprintln!(
                "{what:>12} offered {:>9}: {per_sec:7.0}/s answered, server CPU {cpu:.3} s/s, \
                 {:6.0} us each; {statuses:?}",
                rate.map_or("flat out".to_owned(), |r| format!("{r:.0}/s")),
                cpu * 1e6 / per_sec,
            );
        }
    }
}

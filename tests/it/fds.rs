//! The open-file limit: connections stop short of it, with fds to spare for the store, the
//! control socket and a `503`, so that a new client is answered, the CLI keeps working and
//! the log stays quiet.

use crate::support;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use support::*;

const NOFILE: u32 = 64;

/// Connects and reads what the server says without being asked: a refusal, or nothing.
fn unasked(addr: SocketAddr) -> Option<Response> {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut data = Vec::new();
    let _ = conn.read_to_end(&mut data);
    parse_response(&data)
}

/// Whether a new client is refused with `503` (any other answer is a `200`).
fn at_the_limit(s: &Server) -> bool {
    let r = s.request("GET", "/version", &[], "");
    if r.status != 200 {
        r.assert_error(503);
    }
    r.status == 503
}

/// Lines about refused or failed connections.
fn refusal_lines(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.contains("accept failed") || l.contains("refusing"))
        .collect()
}

// Regression (issue 10): with connections up to the fd limit, a new client got no answer at
// all, the control socket stopped answering, and the log got a line per failed accept.
#[test]
fn at_the_fd_limit_new_clients_get_503_and_the_cli_still_works() {
    let s = Server::start_with_nofile("fd-limit", "", NOFILE);
    let lowered = s.wait_log("max_connections");
    assert!(lowered.contains("open-file limit"), "{lowered}");
    s.add_user("ann", "secret");
    // Idle connections (trusted loopback: no per-address cap) up to and past the limit.
    let mut held = Vec::new();
    for _ in 0..NOFILE {
        let conn = TcpStream::connect(s.addr).unwrap();
        held.push(conn);
    }
    wait_until("the server at its limit", || at_the_limit(&s));
    let started = Instant::now();
    let r = s.request("GET", "/version", &[], "");
    r.assert_error(503);
    assert!(started.elapsed() < Duration::from_secs(2));
    // A flood of further clients: each is answered, none fills the log.
    for _ in 0..100 {
        let refused = unasked(s.addr).expect("an answer, not silence");
        refused.assert_error(503);
    }
    let out = s.cli(&["user", "list"], "");
    assert!(
        out.status.success(),
        "the CLI failed at the limit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ann"));
    drop(held);
    wait_until("an answer once the connections closed", || {
        !at_the_limit(&s)
    });
    let lines = s.log_until_now();
    let refusals = refusal_lines(&lines);
    assert!(refusals.len() <= 3, "log flood: {refusals:#?}");
}

// When something else took the spare fds too (here: control connections that say nothing),
// accepting fails (EMFILE); a new client is still answered, and the log stays quiet.
#[test]
fn out_of_fds_a_new_client_still_gets_503_and_the_log_stays_quiet() {
    let s = Server::start_with_nofile("fd-exhausted", "", NOFILE);
    // Bound after the TCP listeners.
    let socket = std::path::PathBuf::from(format!("{}.sock", s.db.display()));
    wait_until("the control socket", || socket.exists());
    let mut held = Vec::new();
    for _ in 0..NOFILE {
        held.push(TcpStream::connect(s.addr).unwrap());
    }
    let mut quiet = Vec::new();
    for _ in 0..NOFILE {
        quiet.push(UnixStream::connect(&socket).unwrap());
    }
    wait_until("the server at its limit", || at_the_limit(&s));
    for _ in 0..20 {
        let refused = unasked(s.addr).expect("an answer, not silence");
        refused.assert_error(503);
    }
    // A while at the limit: a server that logged every failed accept would fill the log.
    std::thread::sleep(Duration::from_millis(1500));
    drop(quiet);
    drop(held);
    wait_until("an answer once the connections closed", || {
        !at_the_limit(&s)
    });
    let lines = s.log_until_now();
    let refusals = refusal_lines(&lines);
    assert!(refusals.len() <= 4, "log flood: {refusals:#?}");
}

//! Test harness: runs the real `openpush` binary on 127.0.0.1:0 with a temporary database
//! and talks to it over real sockets, with raw HTTP/1.1 so that protocol edges are visible.
//!
//! Requests are raw bytes, so that a test can send anything; what the server sends back is
//! read as a client reads it, by `openpush-wire` (response heads and bodies, SSE events,
//! base64, JSON fields), so the tests check the server against the client's reading.
//!
//! - [`server`]: a server process of a test, its requests, CLI, metrics and log;
//! - [`process`]: every `openpush` process, without the test runner's service variables;
//! - [`http`]: requests as raw bytes, responses as the wire's client reads them;
//! - [`sse`], [`push`] (ntfy's JSON lines and objects), [`ws`] (a WebSocket client),
//!   [`conn`] (one keep-alive connection): the streams as their clients read them;
//! - [`api`], [`vapid`], [`webpush`]: what the OpenPush API's, VAPID's and Web Push's tests
//!   share.
//!
//! Everything here is shared by tests that run at once in one process: nothing keeps state
//! but the counter of [`temp_dir`], and every wait ends at a deadline.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod api;
pub mod conn;
pub mod http;
pub mod process;
pub mod push;
#[cfg(feature = "redis")]
pub mod redis;
pub mod server;
pub mod sse;
pub mod vapid;
pub mod webpush;
pub mod ws;

pub use http::{
    Response, basic, closed_within, json_field, parse_response, read_more, request, send_raw,
};
pub use process::{
    cli, openpush_command, output_within, rss_kib, run_cli, run_with_stdin, signal, stderr, stdout,
    without_service_variables,
};
pub use server::Server;
pub use sse::{Event, Sse};

pub const BIN: &str = env!("CARGO_BIN_EXE_openpush");
/// How long a test waits for anything the server should do at once: far above what a
/// loaded machine takes, so that only a real hang reaches it.
pub const TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one test's database and config.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until `done` holds, looking every 20 ms; fails the test with `what` after
/// [`TIMEOUT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file of `tests/fixtures/tls`: the test CA, leaves signed by it and a stranger's.
#[cfg(feature = "tls")]
pub fn tls_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// Seconds since the Unix epoch, as the server's timestamps count them.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

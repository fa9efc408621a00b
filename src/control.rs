//! The local control socket: how `openpush user …`/`client …` reach a running server,
//! which holds the database's lock.
//!
//! A Unix socket next to the database, mode 0600 (the service user only). One request per
//! connection: a [`Command`] in, as one JSON [`Wire`] line; out, at once an empty line (so
//! the CLI knows within [`ANSWER_WAIT`] that the server is alive), then a JSON [`Reply`]
//! line, within a deadline. The server removes the socket file when it exits.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

use crate::commands::{self, Command, Reply, Wire};
use crate::state::ServerState;

const MAX_REQUEST_BYTES: usize = 64 * 1024;
const DEADLINE: Duration = Duration::from_secs(10);
/// How long the CLI waits for a running server's first byte: a server that is alive sends
/// it at once, so longer means it is stopped (SIGSTOP, a debugger) or stuck.
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// The socket file this process bound, with its inode, to remove at exit.
static BOUND: Mutex<Option<(PathBuf, u64, u64)>> = Mutex::new(None);

/// Binds the control socket, replacing a stale one. `None` (with a warning) when the
/// directory does not allow it: the server still runs, only the CLI needs it stopped.
pub fn bind(path: &Path) -> Result<Option<Async<UnixListener>>, String> {
    if UnixStream::connect(path).is_ok() {
        return Err(format!(
            "{} is in use by another running openpush",
            path.display()
        ));
    }
    let _ = std::fs::remove_file(path);
    let listener = match UnixListener::bind(path) {
        Ok(listener) => listener,
        Err(e) => {
            log::warn!(
                "no control socket at {}: {e}; the CLI will need the server stopped",
                path.display()
            );
            return Ok(None);
        }
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        *BOUND.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((path.to_owned(), meta.dev(), meta.ino()));
    }
    Async::new(listener)
        .map(Some)
        .map_err(|e| format!("control socket: {e}"))
}

/// Removes the socket file [`bind`] created, unless another process has replaced it since.
pub fn remove_bound() {
    let bound = BOUND.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((path, dev, ino)) = bound {
        let same = std::fs::symlink_metadata(&path).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
        if same {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Serves the control socket: one command per connection, answered once it is done.
pub async fn serve(state: Rc<ServerState>, listener: Async<UnixListener>) {
    // Out of descriptors, accepting fails as fast as it is tried: pause, log a count.
    let failures = crate::logger::Tally::new(Duration::from_secs(10));
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                let task = handle(state.clone(), conn);
                state.executor.spawn(task).detach();
            }
            Err(e) => {
                if let Some(more) = failures.count(Instant::now()) {
                    log::warn!("control socket accept failed: {e}{more}");
                }
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(state: Rc<ServerState>, mut conn: Async<UnixStream>) {
    let work = async {
        // Alive: the CLI stops waiting for a sign of life and waits for the reply.
        if conn.write_all(b"\n").await.is_err() {
            return;
        }
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        while !request.contains(&b'\n') && request.len() < MAX_REQUEST_BYTES {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        let wire = std::str::from_utf8(&request)
            .ok()
            .and_then(|text| miniserde::json::from_str::<Wire>(text.trim()).ok());
        let reply = match wire {
            Some(wire) => {
                log::info!("control: {}", wire.op);
                match Command::try_from(wire) {
                    Ok(cmd) => run(&state, cmd).await,
                    Err(output) => Reply { ok: false, output },
                }
            }
            None => Reply {
                ok: false,
                output: "malformed control request".into(),
            },
        };
        let mut line = miniserde::json::to_string(&reply);
        line.push('\n');
        let _ = conn.write_all(line.as_bytes()).await;
    };
    let deadline = async {
        Timer::after(DEADLINE).await;
    };
    future::or(work, deadline).await;
}

/// Runs a command from the socket, and what it means for the running server.
async fn run(state: &ServerState, cmd: Command) -> Reply {
    match commands::execute(&state.store, cmd, &state.config().limits).await {
        Ok((output, effects)) => {
            if effects.users_changed {
                state.auth.forget();
            }
            Reply { ok: true, output }
        }
        Err(output) => Reply { ok: false, output },
    }
}

/// Sends one command to a running server. `Ok(None)` when no server listens there.
///
/// A server that does not send its first byte within [`ANSWER_WAIT`] is not waited for:
/// the error says so in words (a stopped or stuck server), not with the OS error.
pub fn call(path: &Path, cmd: &Command) -> Result<Option<Reply>, String> {
    let mut conn = match UnixStream::connect(path) {
        Ok(conn) => conn,
        Err(_) => return Ok(None),
    };
    conn.set_write_timeout(Some(ANSWER_WAIT))
        .and_then(|()| conn.set_read_timeout(Some(ANSWER_WAIT)))
        .map_err(|e| e.to_string())?;
    let mut line = miniserde::json::to_string(&Wire::from(cmd.clone()));
    line.push('\n');
    conn.write_all(line.as_bytes()).map_err(|e| {
        if timed_out(&e) {
            silent(path)
        } else {
            format!(
                "the server closed its control socket {}: {e}",
                path.display()
            )
        }
    })?;
    let answer = read_answer(&mut conn, path)?;
    let answer = String::from_utf8_lossy(&answer);
    if answer.trim().is_empty() {
        return Err(format!(
            "the server closed its control socket {} without an answer (it may be stopping)",
            path.display()
        ));
    }
    miniserde::json::from_str(answer.trim())
        .map(Some)
        .map_err(|_| {
            format!(
                "the running server sent a malformed answer on {}",
                path.display()
            )
        })
}

/// Reads the server's answer to the end: its first byte within [`ANSWER_WAIT`], the rest
/// within the server's own deadline.
fn read_answer(conn: &mut UnixStream, path: &Path) -> Result<Vec<u8>, String> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let started = Instant::now();
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(answer),
            Ok(n) => {
                answer.extend_from_slice(&chunk[..n]);
                // Alive: the reply may take up to the server's own deadline.
                conn.set_read_timeout(Some(DEADLINE + Duration::from_secs(1)))
                    .map_err(|e| e.to_string())?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) && answer.is_empty() => return Err(silent(path)),
            Err(e) if timed_out(&e) => {
                return Err(format!(
                    "the server did not finish the command within {} s; it may still complete",
                    started.elapsed().as_secs()
                ));
            }
            Err(e) => {
                return Err(format!(
                    "the server closed its control socket {} early: {e}",
                    path.display()
                ));
            }
        }
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// The error for a server that does not answer at all.
fn silent(path: &Path) -> String {
    format!(
        "the server that holds this database does not answer on {} (waited {} s): \
         it may be stopped (kill -CONT its process) or stuck; try again or restart it",
        path.display(),
        ANSWER_WAIT.as_secs()
    )
}

//! The local control socket: how `openpush user …`/`client …` reach a running server,
//! which holds the database's lock.
//!
//! A Unix socket next to the database, mode 0600 (the service user only). One request per
//! connection: a JSON [`Command`] line in, a JSON [`Reply`] line out, within a deadline.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

use crate::commands::{self, Command, Reply};
use crate::state::ServerState;

const MAX_REQUEST_BYTES: usize = 64 * 1024;
const DEADLINE: Duration = Duration::from_secs(10);

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
    Async::new(listener)
        .map(Some)
        .map_err(|e| format!("control socket: {e}"))
}

pub async fn serve(state: Rc<ServerState>, listener: Async<UnixListener>) {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                let task = handle(state.clone(), conn);
                state.executor.spawn(task).detach();
            }
            Err(e) => {
                log::warn!("control socket accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(state: Rc<ServerState>, mut conn: Async<UnixStream>) {
    let work = async {
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        while !request.contains(&b'\n') && request.len() < MAX_REQUEST_BYTES {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        let reply = match std::str::from_utf8(&request)
            .ok()
            .and_then(|text| miniserde::json::from_str::<Command>(text.trim()).ok())
        {
            Some(cmd) => {
                log::info!("control: {}", cmd.op);
                match commands::execute(&state.store, cmd, &state.config().limits).await {
                    Ok((output, effects)) => {
                        for queue in effects.revoked_queues {
                            state.hub.revoke(queue);
                        }
                        if effects.users_changed {
                            state.auth.forget();
                        }
                        Reply { ok: true, output }
                    }
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

/// Sends one command to a running server. `Ok(None)` when no server listens there.
pub fn call(path: &Path, cmd: &Command) -> Result<Option<Reply>, String> {
    let mut conn = match UnixStream::connect(path) {
        Ok(conn) => conn,
        Err(_) => return Ok(None),
    };
    let started = Instant::now();
    conn.set_read_timeout(Some(DEADLINE + Duration::from_secs(1)))
        .and_then(|()| conn.set_write_timeout(Some(DEADLINE)))
        .map_err(|e| e.to_string())?;
    let mut line = miniserde::json::to_string(cmd);
    line.push('\n');
    conn.write_all(line.as_bytes())
        .map_err(|e| format!("control socket {}: {e}", path.display()))?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).map_err(|e| {
        format!(
            "the running server did not answer on {} within {:?}: {e}",
            path.display(),
            started.elapsed()
        )
    })?;
    miniserde::json::from_str(answer.trim())
        .map(Some)
        .map_err(|_| {
            format!(
                "the running server sent a malformed answer on {}",
                path.display()
            )
        })
}

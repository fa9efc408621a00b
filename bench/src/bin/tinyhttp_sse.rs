//! The "why not tiny_http" peer: an SSE server written the way a tiny_http application must
//! write one. tiny_http hands out whole requests and writes whole responses; a response that
//! never ends (an event stream) needs a thread that owns the connection for the stream's
//! life, so every idle subscriber costs (at least) one OS thread. Measured with
//! `openpush-bench run --target sse` against `GET /subscribe`.
//!
//! usage: tinyhttp-sse 127.0.0.1:PORT

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// Same keepalive interval as openpush's default.
const KEEPALIVE: Duration = Duration::from_secs(25);

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    assert!(addr.starts_with("127."), "loopback only");
    let server = tiny_http::Server::http(&addr).expect("bind");
    eprintln!("listening on http://{addr}");
    for request in server.incoming_requests() {
        // A failed spawn (thread or pid limits) drops the request: the client sees a reset.
        let spawned = std::thread::Builder::new().spawn(move || {
            if !request.url().starts_with("/subscribe") {
                let _ = request.respond(tiny_http::Response::from_string("not found").with_status_code(404));
                return;
            }
            // Where a real server would register `tx` in a hub so posts can reach the stream.
            let (_tx, rx) = mpsc::channel::<Vec<u8>>();
            let mut w = request.into_writer();
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
Connection: close\r\n\r\nretry: 5000\n\n";
            if w.write_all(head).and_then(|_| w.flush()).is_err() {
                return;
            }
            loop {
                let out = match rx.recv_timeout(KEEPALIVE) {
                    Ok(event) => event,
                    Err(mpsc::RecvTimeoutError::Timeout) => b": keepalive\n\n".to_vec(),
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                if w.write_all(&out).and_then(|_| w.flush()).is_err() {
                    return;
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("cannot spawn a stream thread: {e}");
        }
    }
}

//! The event loop: listeners, one task per connection, one task per stream, timers.
//!
//! Everything here runs on one thread under a `LocalExecutor` and never blocks: storage
//! goes to the store thread, password hashing to the hasher thread. A connection task
//! reads requests, answers them and, for a stream, hands the socket to a new small task
//! (so an idle stream does not keep the request path's state alive) and ends.

use std::cell::{Cell, RefCell};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use async_signal::{Signal, Signals};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt, future};

use crate::api;
use crate::auth::{Authenticator, Hasher};
use crate::config::Config;
use crate::control;
use crate::error::ApiError;
use crate::http;
use crate::hub::Hub;
use crate::limits::{AddrKey, ConnectionCounts, RateLimiter};
use crate::metrics::Counters;
use crate::sd_notify;
use crate::state::{ConnectionGuard, Reload, ServerState, now_millis};
use crate::store::{Store, queue, topics};
use crate::stream;

/// Expired messages removed per sweep transaction; bounds one commit's size.
const SWEEP_BATCH: usize = 10_000;
/// How long an endpoint topic that no user claimed is kept once it is empty.
const UNCLAIMED_TOPIC_AGE_MS: u64 = 24 * 3600 * 1000;
/// How long a closing connection is drained so that the peer sees our last response
/// instead of a reset.
const LINGER: Duration = Duration::from_millis(500);
/// How long SIGTERM waits for open requests to finish before the process exits.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Binds every address, then serves until the process ends.
pub fn run(config: Config, store: Store, reload: Reload) -> Result<(), String> {
    let mut listeners = Vec::new();
    for addr in &config.listen {
        let listener = TcpListener::bind(addr)
            .and_then(Async::new)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.get_ref().local_addr().map_err(|e| e.to_string())?;
        log::info!("listening on http://{bound}");
        listeners.push(listener);
    }
    let signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let hasher = Hasher::start().map_err(|e| format!("cannot start the hasher thread: {e}"))?;
    let executor = Rc::new(LocalExecutor::new());
    let control = control::bind(&config.control_socket_path())?;
    let state = Rc::new(ServerState {
        store,
        hub: Hub::default(),
        auth: Authenticator::new(hasher, &config.limits),
        request_rate: RateLimiter::new(config.limits.requests_per_addr),
        post_rate: RateLimiter::new(config.limits.posts_per_token),
        connections_by_addr: ConnectionCounts::default(),
        executor: executor.clone(),
        counters: Counters::default(),
        connections: Cell::new(0),
        draining: Cell::new(false),
        config: RefCell::new(Rc::new(config)),
        reload,
    });
    for listener in listeners {
        executor
            .spawn(accept_loop(state.clone(), listener))
            .detach();
    }
    if let Some(control) = control {
        executor
            .spawn(control::serve(state.clone(), control))
            .detach();
    }
    executor.spawn(keepalive_loop(state.clone())).detach();
    if let Some(interval) = sd_notify::watchdog_interval() {
        executor
            .spawn(watchdog_loop(state.clone(), interval))
            .detach();
    }
    sd_notify::notify("READY=1\nSTATUS=serving");
    executor.spawn(sweep_loop(state.clone())).detach();
    async_io::block_on(executor.run(shutdown(state.clone(), signals)));
    Ok(())
}

/// Reloads the configuration on SIGHUP. Waits for SIGTERM or SIGINT, then drains: stops accepting, ends every stream, and
/// gives open requests (whose commits are in flight) a bounded time to be answered.
async fn shutdown(state: Rc<ServerState>, mut signals: Signals) {
    while let Some(signal) = signals.next().await {
        match signal {
            // Logs go to stderr, which the service manager owns: nothing to reopen.
            Ok(Signal::Hup) => match (state.reload)() {
                Ok(config) => state.apply(config),
                Err(e) => log::error!("SIGHUP: configuration not reloaded: {e}"),
            },
            Ok(_) => break,
            Err(e) => log::warn!("signal: {e}"),
        }
    }
    log::info!("stopping: {} connections open", state.connections.get());
    sd_notify::notify("STOPPING=1");
    state.draining.set(true);
    state.hub.revoke_all();
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while state.connections.get() > 0 && Instant::now() < deadline {
        Timer::after(Duration::from_millis(20)).await;
    }
    log::info!("stopped");
}

async fn accept_loop(state: Rc<ServerState>, listener: Async<TcpListener>) {
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                log::warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        if state.draining.get() {
            continue;
        }
        if state.connections.get() >= state.config().limits.max_connections {
            log::warn!(
                "refusing {peer}: {} connections open",
                state.connections.get()
            );
            let busy = ApiError::Unavailable("too many connections".into()).to_response();
            let _ = conn.get_ref().set_nodelay(true);
            let _ = std::io::Write::write(&mut conn.get_ref(), &busy.to_bytes(false));
            continue;
        }
        let addr = (!state.is_trusted_proxy(peer.ip())).then(|| AddrKey::of(peer.ip()));
        if let Some(key) = addr
            && !state
                .connections_by_addr
                .open(key, state.config().limits.max_connections_per_addr)
        {
            log::warn!("refusing {peer}: too many connections from its address");
            let busy = ApiError::TooMany {
                detail: "too many connections from your address".into(),
                retry_after_secs: 10,
            }
            .to_response();
            let _ = std::io::Write::write(&mut conn.get_ref(), &busy.to_bytes(false));
            continue;
        }
        state.connections.set(state.connections.get() + 1);
        let guard = ConnectionGuard(state.clone(), addr);
        state
            .executor
            .spawn(serve_connection(state.clone(), conn, peer, guard))
            .detach();
    }
}

async fn serve_connection(
    state: Rc<ServerState>,
    conn: Async<TcpStream>,
    peer: SocketAddr,
    guard: ConnectionGuard,
) {
    let _ = conn.get_ref().set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let req = match http::read_request(&conn, &mut buf, &state.config().limits).await {
            Ok(req) => req,
            Err(e) => {
                if let Some(status) = e.status() {
                    log::info!("{peer}: {status} {}", e.detail());
                    let response = ApiError::Http(status, e.detail()).to_response();
                    if write_all(
                        &conn,
                        &response.to_bytes(false),
                        state.config().limits.write_timeout,
                    )
                    .await
                    {
                        linger_close(&conn).await;
                    }
                }
                return;
            }
        };
        let keep_alive = req.keep_alive;
        match api::handle(&state, req, peer).await {
            api::Outcome::Respond(response) => {
                let close = response.close || !keep_alive;
                if !write_all(
                    &conn,
                    &response.to_bytes(keep_alive),
                    state.config().limits.write_timeout,
                )
                .await
                {
                    return;
                }
                if close {
                    linger_close(&conn).await;
                    return;
                }
            }
            api::Outcome::Stream(head, subscription) => {
                drop(buf);
                let task = stream::start(conn, head, subscription, guard);
                log::trace!("stream task: {} bytes", std::mem::size_of_val(&task));
                state.executor.spawn(task).detach();
                return;
            }
        }
    }
}

/// Writes all of `bytes` unless the peer stalls past `timeout`; false if the connection is lost.
pub async fn write_all(conn: &Async<TcpStream>, bytes: &[u8], timeout: Duration) -> bool {
    let write = async {
        let mut stream = conn;
        stream.write_all(bytes).await.is_ok()
    };
    let stall = async {
        Timer::after(timeout).await;
        false
    };
    future::or(write, stall).await
}

async fn linger_close(conn: &Async<TcpStream>) {
    let _ = conn.get_ref().shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut left = 256 * 1024usize;
    while left > 0 {
        let read = async {
            let mut stream = conn;
            stream.read(&mut sink).await.unwrap_or(0)
        };
        let timeout = async {
            Timer::at(deadline).await;
            0
        };
        match future::or(read, timeout).await {
            0 => return,
            n => left = left.saturating_sub(n),
        }
    }
}

async fn keepalive_loop(state: Rc<ServerState>) {
    loop {
        Timer::after(state.config().keepalive).await;
        state.hub.keepalive_all();
    }
}

/// Pings systemd's watchdog only while both the event loop and the store answer, so a
/// wedged store gets the service restarted too.
async fn watchdog_loop(state: Rc<ServerState>, interval: Duration) {
    loop {
        Timer::after(interval / 2).await;
        if state.store.read(|_| Ok(())).await.is_ok() {
            sd_notify::notify("WATCHDOG=1");
        } else {
            log::error!("the store does not answer; withholding the watchdog ping");
        }
    }
}

async fn sweep_loop(state: Rc<ServerState>) {
    loop {
        Timer::after(state.config().sweep_interval).await;
        let now = now_millis();
        match state
            .store
            .write(move |t, m| {
                let expired = queue::sweep(t, m, now, SWEEP_BATCH)?;
                let topics = topics::sweep_unclaimed(t, m, now, UNCLAIMED_TOPIC_AGE_MS)?;
                Ok((expired, topics))
            })
            .await
        {
            Ok((0, 0)) => {}
            Ok((n, t)) => log::info!("removed {n} expired messages and {t} unused topics"),
            Err(e) => log::warn!("expiry sweep failed: {e}"),
        }
    }
}

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
use futures_lite::{AsyncReadExt, StreamExt, future};

use crate::auth::{Authenticator, Hasher};
use crate::clock::now_millis;
use crate::config::Config;
use crate::control;
use crate::error::ApiError;
use crate::http;
use crate::http::write_all;
use crate::hub::Hub;
use crate::limits::{AddrKey, ConnectionCounts, Rate, RateLimiter};
use crate::logger::Tally;
use crate::metrics::Counters;
use crate::reconnects::ReconnectLog;
use crate::route::Outcome;
use crate::router;
use crate::sd_notify;
use crate::state::{ConnectionGuard, RESERVED_FDS, Reload, ServerState};
use crate::store::tables::UAID_QUEUES;
use crate::store::{self, Store, autopush, queue, topics};
use crate::stream;
use crate::transport::Conn;

/// Expired messages removed per sweep transaction; bounds one commit's size.
const SWEEP_BATCH: usize = 10_000;
/// How long an endpoint topic that no user claimed is kept once it is empty.
const UNCLAIMED_TOPIC_AGE_MS: u64 = 24 * 3600 * 1000;
/// How long a closing connection is drained so that the peer sees our last response
/// instead of a reset.
const LINGER: Duration = Duration::from_millis(500);
/// How long SIGTERM waits for open requests to finish before the process exits.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Refused connections kept open at a time so that their answer arrives; more are closed
/// right after the answer is written.
const MAX_LINGERING_REFUSALS: usize = 8;
/// A failure or refusal that repeats is logged at most once per this, with a count.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The pauses after a failed accept: doubling from the first to the last.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Binds every address, then serves until the process ends.
pub fn run(config: Config, store: Store, reload: Reload) -> Result<(), String> {
    #[cfg(feature = "tls")]
    let certificate = match config.tls_paths() {
        Some(paths) if !config.listen_tls.is_empty() => Some(crate::tls::Certificate::load(paths)?),
        _ => None,
    };
    let listeners = bind(&config)?;
    let signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let hasher = Hasher::start().map_err(|e| format!("cannot start the hasher thread: {e}"))?;
    #[cfg(feature = "upstream")]
    let upstream = crate::upstream::Forwarder::start(&config)?;
    let executor = Rc::new(LocalExecutor::new());
    let control = control::bind(&config.control_socket_path())?;
    // Said once the CLI can reach the server too: scripts wait for this line.
    for (_, bound, tls) in &listeners {
        let scheme = if *tls { "https" } else { "http" };
        log::info!("listening on {scheme}://{bound}");
    }
    let state = Rc::new(ServerState {
        #[cfg(feature = "tls")]
        certificate,
        locations: crate::locations::Locations::new(store.names_key()),
        store,
        hub: Hub::default(),
        auth: Authenticator::new(hasher, &config.limits),
        #[cfg(feature = "upstream")]
        upstream,
        request_rate: RateLimiter::new(config.limits.requests_per_addr),
        post_rate: RateLimiter::new(config.limits.posts_per_token),
        channel_changes: RateLimiter::new(config.limits.channel_changes_per_uaid),
        vapid_signers: crate::signers::Signers::new(config.limits.vapid_verifications),
        new_unclaimed_topics: RateLimiter::new(Rate::per_hour(
            config.limits.new_unclaimed_topics_per_hour_per_addr,
        )),
        new_uaids: RateLimiter::new(Rate::per_hour(config.limits.new_uaids_per_hour_per_addr)),
        connections_by_addr: ConnectionCounts::default(),
        nextpush_opens: ReconnectLog::default(),
        scheduled: crate::clock::Alarm::default(),
        executor: executor.clone(),
        counters: Counters::default(),
        connections: Cell::new(0),
        fd_limit: fd_connection_limit(),
        refusing: Cell::new(0),
        draining: Cell::new(false),
        started: Instant::now(),
        config: RefCell::new(Rc::new(config)),
        reload,
    });
    state.log_connection_limit(&state.config());
    spawn_tasks(&state, listeners, control)?;
    sd_notify::notify("READY=1\nSTATUS=serving");
    async_io::block_on(executor.run(shutdown(state.clone(), signals)));
    Ok(())
}

/// Binds every plain and TLS address: the listener, its bound address, whether it is TLS.
fn bind(config: &Config) -> Result<Vec<(Async<TcpListener>, SocketAddr, bool)>, String> {
    let mut listeners = Vec::new();
    let tls = config.listen_tls.iter().map(|addr| (addr, true));
    for (addr, tls) in config.listen.iter().map(|addr| (addr, false)).chain(tls) {
        let listener = TcpListener::bind(addr)
            .and_then(Async::new)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.get_ref().local_addr().map_err(|e| e.to_string())?;
        listeners.push((listener, bound, tls));
    }
    Ok(listeners)
}

/// Starts the server's tasks on its executor: the store's events, the listeners, the
/// certificate watch, the control socket, keepalives, the watchdog and the sweeps.
fn spawn_tasks(
    state: &Rc<ServerState>,
    listeners: Vec<(Async<TcpListener>, SocketAddr, bool)>,
    control: Option<Async<std::os::unix::net::UnixListener>>,
) -> Result<(), String> {
    let executor = &state.executor;
    let events = state
        .store
        .events()
        .map_err(|e| format!("cannot follow the store: {e}"))?;
    executor.spawn(store_events(state.clone(), events)).detach();
    for (listener, _, tls) in listeners {
        executor
            .spawn(accept_loop(state.clone(), listener, tls))
            .detach();
    }
    #[cfg(feature = "tls")]
    if state.certificate.is_some() {
        executor.spawn(certificate_watch(state.clone())).detach();
    }
    if let Some(control) = control {
        executor
            .spawn(control::serve(state.clone(), control))
            .detach();
    }
    executor.spawn(keepalive_loop(state.clone())).detach();
    crate::router::start_door_tasks(state);
    if let Some(interval) = sd_notify::watchdog_interval() {
        executor
            .spawn(watchdog_loop(state.clone(), interval))
            .detach();
    }
    executor.spawn(sweep_loop(state.clone())).detach();
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
    // A durable commit after every write so far: confirmations committed lazily included.
    Timer::after(Duration::from_millis(20)).await;
    if let Err(e) = state.store.write(|_, _| Ok(())).await {
        log::warn!("the last commit failed: {e}");
    }
    log::info!("stopped");
}

/// Raises the soft open-file limit to the hard one (as far as the system allows), and
/// returns how many connections it leaves room for after [`RESERVED_FDS`]
/// (`usize::MAX`: no limit).
fn fd_connection_limit() -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum)
        && soft < hard
    {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            log::debug!("open-file limit raised from {soft} to {hard}");
            limit = raised;
        }
    }
    limit.current.map_or(usize::MAX, |n| {
        usize::try_from(n)
            .unwrap_or(usize::MAX)
            .saturating_sub(RESERVED_FDS)
            .max(1)
    })
}

/// A descriptor held in reserve: closed to make room for accepting a connection only to
/// refuse it when the process has no descriptor left, then taken again.
fn spare_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn out_of_fds(e: &std::io::Error) -> bool {
    // EMFILE (the process's limit) and ENFILE (the system's).
    matches!(e.raw_os_error(), Some(24 | 23))
}

/// Accepts connections on `listener` (TLS ones if `tls`) and starts a task for each.
async fn accept_loop(state: Rc<ServerState>, listener: Async<TcpListener>, tls: bool) {
    let failures = Tally::new(LOG_EVERY);
    let refusals = Refusals {
        full: Tally::new(LOG_EVERY),
        crowded: Tally::new(LOG_EVERY),
    };
    let mut spare = spare_fd();
    let mut backoff = ACCEPT_BACKOFF.0;
    // A client waits in the backlog while the process is out of descriptors.
    let mut waiting = false;
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF.0;
                waiting = false;
                accepted
            }
            Err(e) => {
                if let Some(more) = failures.count(Instant::now()) {
                    log::warn!("accept failed: {e}{more}");
                }
                // Out of descriptors, a client in the backlog would get no answer at all:
                // once one waits (and accepting it still fails), the spare descriptor
                // makes room to accept it and answer 503.
                if out_of_fds(&e) && spare.is_some() {
                    if !std::mem::replace(&mut waiting, true) {
                        let _ = listener.readable().await;
                        continue;
                    }
                    waiting = false;
                    drop(spare.take());
                    if let Ok((conn, _)) = listener.get_ref().accept()
                        && !tls
                    {
                        refuse_at_once(conn, &unavailable());
                    }
                    spare = spare_fd();
                    if spare.is_some() {
                        continue;
                    }
                }
                Timer::after(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        if !state.draining.get() {
            admit(&state, conn, peer, tls, &refusals);
        }
    }
}

/// The refusals of one listener, each logged at most once per [`LOG_EVERY`].
struct Refusals {
    /// The server holds the most connections allowed.
    full: Tally,
    /// The peer's address holds the most connections allowed to one address.
    crowded: Tally,
}

/// Serves an accepted connection in a task of its own, or refuses it (503 when the server
/// is full, 429 when its address is) if the limits leave no room for it.
fn admit(
    state: &Rc<ServerState>,
    conn: Async<TcpStream>,
    peer: SocketAddr,
    tls: bool,
    refusals: &Refusals,
) {
    let max = state.max_connections();
    if state.connections.get() >= max {
        if let Some(more) = refusals.full.count(Instant::now()) {
            log::warn!("refusing connections: {max} open, the most allowed{more}");
        }
        return refuse(state, conn, &unavailable(), tls);
    }
    let addr = (!state.is_trusted_proxy(peer.ip())).then(|| AddrKey::of(peer.ip()));
    if let Some(key) = addr
        && !state
            .connections_by_addr
            .open(key, state.config().limits.max_connections_per_addr)
    {
        if let Some(more) = refusals.crowded.count(Instant::now()) {
            log::warn!("refusing {peer}: too many connections from its address{more}");
        }
        let busy = ApiError::TooMany {
            detail: "too many connections from your address".into(),
            retry_after_secs: 10,
        };
        return refuse(state, conn, &busy, tls);
    }
    let Some(conn) = transport(state, conn, tls) else {
        return;
    };
    state.connections.set(state.connections.get() + 1);
    let guard = ConnectionGuard(state.clone(), addr);
    state
        .executor
        .spawn(serve_connection(state.clone(), conn, peer, guard))
        .detach();
}

fn unavailable() -> ApiError {
    ApiError::Unavailable("too many connections".into())
}

/// The connection as it is served: TLS on a TLS listener.
#[cfg_attr(not(feature = "tls"), allow(unused_variables))]
fn transport(state: &ServerState, tcp: Async<TcpStream>, tls: bool) -> Option<Conn> {
    if !tls {
        return Some(Conn::Plain(tcp));
    }
    #[cfg(feature = "tls")]
    if let Some(certificate) = &state.certificate {
        return match crate::tls::TlsStream::new(tcp, certificate.config()) {
            Ok(stream) => Some(Conn::Tls(Box::new(stream))),
            Err(e) => {
                log::warn!("cannot start a TLS session: {e}");
                None
            }
        };
    }
    None
}

/// Answers a connection that is not served, and closes it: after a short linger, so that
/// the answer arrives rather than a reset, while few others linger; at once otherwise. A
/// TLS connection is closed without an answer: it would cost a handshake.
fn refuse(state: &Rc<ServerState>, conn: Async<TcpStream>, why: &ApiError, tls: bool) {
    if tls {
        return;
    }
    answer(conn.get_ref(), why);
    if state.refusing.get() >= MAX_LINGERING_REFUSALS {
        return;
    }
    state.refusing.set(state.refusing.get() + 1);
    let refusing = state.clone();
    state
        .executor
        .spawn(async move {
            linger_close(&mut Conn::Plain(conn)).await;
            refusing.refusing.set(refusing.refusing.get() - 1);
        })
        .detach();
}

/// Answers a connection that is not served and closes it at once.
fn refuse_at_once(conn: TcpStream, why: &ApiError) {
    if conn.set_nonblocking(true).is_ok() {
        answer(&conn, why);
        let _ = conn.shutdown(Shutdown::Write);
    }
}

/// Writes the answer to a refused (non-blocking) connection. What the client sent so far is
/// read first: closing a socket with unread bytes resets the connection, and a reset can
/// overtake the answer.
fn answer(mut conn: &TcpStream, why: &ApiError) {
    let _ = conn.set_nodelay(true);
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        if !matches!(std::io::Read::read(&mut conn, &mut sink), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = std::io::Write::write(&mut conn, &why.to_response().to_bytes(false));
}

async fn serve_connection(
    state: Rc<ServerState>,
    mut conn: Conn,
    peer: SocketAddr,
    guard: ConnectionGuard,
) {
    let _ = conn.socket().get_ref().set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let req = match http::read_request(&mut conn, &mut buf, &state.config().limits).await {
            Ok(mut req) => {
                req.tls = conn.is_tls();
                req
            }
            Err(e) => {
                if let Some(status) = e.status() {
                    log::info!("{peer}: {status} {}", e.detail());
                    let response = ApiError::Http(status, e.detail()).to_response();
                    if write_all(
                        &mut conn,
                        &response.to_bytes(false),
                        state.config().limits.write_timeout,
                    )
                    .await
                    {
                        linger_close(&mut conn).await;
                    }
                }
                return;
            }
        };
        let keep_alive = req.keep_alive;
        match router::handle(&state, req, peer).await {
            Outcome::Respond(response) => {
                let close = response.close || !keep_alive;
                if !write_all(
                    &mut conn,
                    &response.to_bytes(keep_alive),
                    state.config().limits.write_timeout,
                )
                .await
                {
                    return;
                }
                if close {
                    linger_close(&mut conn).await;
                    return;
                }
            }
            Outcome::Stream(head, subscription, reader) => {
                drop(buf);
                let task = stream::start(conn, head, subscription, reader, guard);
                log::trace!("stream task: {} bytes", std::mem::size_of_val(&task));
                state.executor.spawn(task).detach();
                return;
            }
            Outcome::Upgrade(takeover) => {
                drop(buf);
                state.executor.spawn(takeover(conn, guard)).detach();
                return;
            }
        }
    }
}

async fn linger_close(conn: &mut Conn) {
    conn.shutdown_write();
    let conn = conn.socket();
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

/// Loads the certificate again when its files change (a renewal), so that no reload is
/// needed.
#[cfg(feature = "tls")]
async fn certificate_watch(state: Rc<ServerState>) {
    loop {
        Timer::after(state.config().tls_cert_check).await;
        if let Some(certificate) = &state.certificate {
            certificate.reload_if_changed();
        }
    }
}

/// Hands the store's commit events to the hub, in commit order.
async fn store_events(state: Rc<ServerState>, events: async_channel::Receiver<store::Event>) {
    while let Ok(event) = events.recv().await {
        match event {
            store::Event::Staged(messages) => state.hub.stage(messages),
            store::Event::Revoked(revoked) => {
                for revocation in revoked {
                    // Also for a change made on another node (Redis): its cached logins go.
                    if let store::Revocation::User(user) | store::Revocation::Token { user, .. } =
                        revocation
                    {
                        state.auth.forget_user(user);
                    }
                    state.hub.revoke_access(revocation);
                }
            }
            store::Event::Committed(queues) => {
                for queue in queues {
                    state.hub.notify(queue);
                }
            }
            store::Event::PassedOn(messages) => {
                for (queue, id, record) in messages {
                    state.hub.deliver_now(queue, id, Rc::new(record));
                }
            }
            store::Event::Resync => {
                let mut queues = state.hub.followed_queues();
                queues.dedup();
                for queue in queues {
                    state.hub.notify(queue);
                }
            }
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

/// Removes what has expired every `sweep_interval`. Looks on a snapshot first, so that a
/// server with nothing to remove writes nothing: a commit costs the flash a page and an
/// fsync even when it changes nothing.
async fn sweep_loop(state: Rc<ServerState>) {
    loop {
        Timer::after(state.config().sweep_interval).await;
        let now = now_millis();
        let live: std::collections::HashSet<u64> = state
            .hub
            .live_queues_from(UAID_QUEUES)
            .into_iter()
            .collect();
        let uaid_idle_ms = state.config().uaid_expiry.as_millis() as u64;
        let seen_live = live.clone();
        let anything_due = state.store.read(move |t| {
            let is_live = |q| seen_live.contains(&q);
            Ok(!queue::expired(t, now, 1)?.is_empty()
                || !topics::stale_unclaimed(t, now, UNCLAIMED_TOPIC_AGE_MS)?.is_empty()
                || !autopush::idle(t, now, uaid_idle_ms, is_live, 1)?.is_empty())
        });
        match anything_due.await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                log::warn!("expiry sweep failed: {e}");
                continue;
            }
        }
        match state
            .store
            .write(move |t, m| {
                let expired = queue::sweep(t, m, now, SWEEP_BATCH)?;
                let topics = topics::sweep_unclaimed(t, m, now, UNCLAIMED_TOPIC_AGE_MS)?;
                let is_live = |q| live.contains(&q);
                let uaids = autopush::sweep_idle(t, m, now, uaid_idle_ms, is_live, SWEEP_BATCH)?;
                Ok((expired, topics, uaids))
            })
            .await
        {
            Ok((0, 0, 0)) => {}
            Ok((n, t, u)) => log::info!(
                "removed {n} expired messages, {t} unused topics and {u} idle autopush user agents"
            ),
            Err(e) => log::warn!("expiry sweep failed: {e}"),
        }
    }
}

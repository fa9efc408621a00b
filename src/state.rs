//! The server's shared state on the event loop: configuration, store handle, hub,
//! authenticator, limiters and counters; and the connection guard that counts a
//! connection in whichever task holds it.
//!
//! One `ServerState` per process, behind an `Rc`: everything here is touched from the
//! event loop thread only. The configuration is swapped whole by SIGHUP; readers take a
//! snapshot with [`ServerState::config`] and never hold it across a reload they care about.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;

use async_executor::LocalExecutor;

use crate::auth::Authenticator;
use crate::clock::Alarm;
use crate::config::{Anonymous, Config};
use crate::hub::{Hub, Reader};
use crate::limits::{AddrKey, ConnectionCounts, Rate, RateLimiter};
use crate::locations::Locations;
use crate::metrics::Counters;
use crate::reconnects::ReconnectLog;
use crate::signers::Signers;
use crate::store::Store;

/// File descriptors kept back from connections: the database file, the listeners, the
/// control socket and its connections, the event loop's own (epoll, its notifier, the
/// signal pipe), stdio, refused connections lingering to deliver their answer, and the
/// spare one that lets a connection be accepted and refused when none is left.
pub const RESERVED_FDS: usize = 32;

/// The server's state on the event loop, shared by every task through an `Rc`.
pub struct ServerState {
    /// The certificate of the `listen_tls` addresses; `None` without them.
    #[cfg(feature = "tls")]
    pub(crate) certificate: Option<crate::tls::Certificate>,
    /// Replaced as a whole by SIGHUP; readers take a snapshot with [`ServerState::config`].
    pub(crate) config: RefCell<Rc<Config>>,
    /// Reads the configuration again, as at start (file, then command-line flags).
    pub(crate) reload: Reload,
    /// The store thread's handle.
    pub store: Store,
    /// The names senders see for messages instead of their ids.
    pub locations: Locations,
    /// The live streams, by queue.
    pub hub: Hub,
    /// Logins and their cache.
    pub auth: Authenticator,
    /// The poll requests for iPhones (`upstream_base_url`).
    #[cfg(feature = "upstream")]
    pub upstream: crate::upstream::Forwarder,
    /// The event loop's executor, for the tasks handlers spawn.
    pub executor: Rc<LocalExecutor<'static>>,
    /// What `/metrics` counts.
    pub counters: Counters,
    /// Requests per client address.
    pub request_rate: RateLimiter<AddrKey>,
    /// Posts per routing token (keyed by a digest prefix of the token).
    pub post_rate: RateLimiter<[u8; 16]>,
    /// Autopush channel changes per user agent (its queue id).
    pub channel_changes: RateLimiter<u64>,
    /// Who may spend a VAPID signature verification now.
    pub vapid_signers: Signers,
    /// Endpoint topics created by anonymous posts, per client address.
    pub new_unclaimed_topics: RateLimiter<AddrKey>,
    /// Autopush user agents created, per client address.
    pub new_uaids: RateLimiter<AddrKey>,
    pub(crate) connections_by_addr: ConnectionCounts,
    /// Stream opens per NextPush device, for its `warning` event.
    pub nextpush_opens: ReconnectLog,
    /// When the earliest scheduled message (`store::schedule`) is due, for the task that
    /// sends them.
    pub scheduled: Alarm,
    pub(crate) connections: Cell<usize>,
    /// Connections the open-file limit leaves room for (`usize::MAX`: no limit); caps
    /// `max_connections`.
    pub(crate) fd_limit: usize,
    /// Refused connections still open to deliver their answer.
    pub(crate) refusing: Cell<usize>,
    /// Set by SIGTERM: no new connections are served.
    pub(crate) draining: Cell<bool>,
    /// When the server started serving, for its uptime.
    pub started: std::time::Instant,
}

/// Builds the configuration again for SIGHUP.
pub type Reload = Box<dyn Fn() -> Result<Config, String>>;

impl ServerState {
    /// The configuration now: a snapshot that a reload does not change.
    pub fn config(&self) -> Rc<Config> {
        self.config.borrow().clone()
    }

    /// Applies a new configuration: every limit, time and the log level take effect at
    /// once (streams that `anonymous_access` no longer lets read end); what needs a
    /// restart (addresses, database, sockets, cache) is kept and named.
    pub(crate) fn apply(&self, new: Config) {
        let old = self.config();
        let fixed = [
            ("listen", old.listen != new.listen),
            ("listen_tls", old.listen_tls != new.listen_tls),
            ("db", old.db != new.db),
            ("store", old.store != new.store),
            ("redis_prefix", old.redis_prefix != new.redis_prefix),
            (
                "redis_require_fsync",
                old.redis_require_fsync != new.redis_require_fsync,
            ),
            (
                "control_socket",
                old.control_socket_path() != new.control_socket_path(),
            ),
            ("db_cache_bytes", old.db_cache_bytes != new.db_cache_bytes),
            (
                "store_queue",
                old.limits.store_queue != new.limits.store_queue,
            ),
        ];
        for (key, changed) in fixed {
            if changed {
                log::warn!("{key} changed: takes effect after a restart");
            }
        }
        #[cfg(feature = "tls")]
        if let (Some(certificate), Some(paths)) = (&self.certificate, new.tls_paths()) {
            certificate.reload(paths);
        }
        let new = Config {
            listen: old.listen.clone(),
            listen_tls: old.listen_tls.clone(),
            db: old.db.clone(),
            store: old.store.clone(),
            redis_prefix: old.redis_prefix.clone(),
            redis_require_fsync: old.redis_require_fsync,
            control_socket: old.control_socket.clone(),
            db_cache_bytes: old.db_cache_bytes,
            limits: crate::config::Limits {
                store_queue: old.limits.store_queue,
                ..new.limits
            },
            ..new
        };
        log::set_max_level(new.log_level);
        self.log_connection_limit(&new);
        self.request_rate.set_rate(new.limits.requests_per_addr);
        self.post_rate.set_rate(new.limits.posts_per_token);
        self.channel_changes
            .set_rate(new.limits.channel_changes_per_uaid);
        self.vapid_signers.set_rate(new.limits.vapid_verifications);
        self.new_unclaimed_topics.set_rate(Rate::per_hour(
            new.limits.new_unclaimed_topics_per_hour_per_addr,
        ));
        self.new_uaids
            .set_rate(Rate::per_hour(new.limits.new_uaids_per_hour_per_addr));
        self.auth.set_limits(&new.limits);
        #[cfg(feature = "upstream")]
        self.upstream.configure(&new);
        if old.anonymous == Anonymous::ReadWrite && new.anonymous != Anonymous::ReadWrite {
            // Requests without a user may no longer read any topic.
            self.hub.revoke_everywhere(Reader::ANONYMOUS);
        }
        *self.config.borrow_mut() = Rc::new(new);
        log::info!("configuration reloaded");
    }

    /// The upstream poll requests so far; `None` without `upstream_base_url` (or the
    /// `upstream` feature).
    pub fn upstream_totals(&self) -> Option<crate::metrics::UpstreamTotals> {
        #[cfg(feature = "upstream")]
        return self.upstream.totals();
        #[cfg(not(feature = "upstream"))]
        None
    }

    /// Open connections, streams included.
    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// The connections served at a time: `max_connections`, or fewer if the open-file
    /// limit leaves room for fewer.
    pub fn max_connections(&self) -> usize {
        self.config().limits.max_connections.min(self.fd_limit)
    }

    /// Says so when the open-file limit lowers `max_connections`.
    pub(crate) fn log_connection_limit(&self, config: &Config) {
        let configured = config.limits.max_connections;
        if configured > self.fd_limit {
            log::info!(
                "max_connections lowered from {configured} to {} by the open-file limit \
                 (RLIMIT_NOFILE), which keeps {} descriptors for the database, the sockets \
                 and refusals",
                self.fd_limit,
                RESERVED_FDS
            );
        }
    }

    /// When the certificate served on `listen_tls` expires (Unix seconds); `None` without
    /// TLS, or when its end could not be read.
    pub fn certificate_expiry(&self) -> Option<u64> {
        #[cfg(feature = "tls")]
        return self.certificate.as_ref().and_then(|c| c.not_after());
        #[cfg(not(feature = "tls"))]
        None
    }

    /// Whether `ip` is one of `trusted_proxies`.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.config().trusted_proxies.contains(&ip.to_canonical())
    }
}

/// Counts a connection while it lives, in whichever task holds it.
pub struct ConnectionGuard(pub(crate) Rc<ServerState>, pub(crate) Option<AddrKey>);

impl ConnectionGuard {
    /// The server's state.
    pub fn state(&self) -> &Rc<ServerState> {
        &self.0
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.set(self.0.connections.get() - 1);
        if let Some(key) = self.1 {
            self.0.connections_by_addr.close(key);
        }
    }
}

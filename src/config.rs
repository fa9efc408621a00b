//! The server's one `Config`: named defaults, the config file, command-line overrides, validation.
//!
//! The file format is deliberately tiny so that an OpenWrt init script can render it with
//! `printf`: one `key = value` per line, `#` starts a comment, values may be quoted, and
//! `listen` may repeat. Unknown keys and malformed values are errors that name the line:
//! a typo must never silently fall back to a default.

mod upstream;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use crate::limits::Rate;
pub use crate::store::topics::Anonymous;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use upstream::{AccessToken, DEFAULT_CA_FILE, Upstream};
use upstream::{access_token, upstream_url};

/// Where the server listens when neither the file nor the flags say.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The database file name, in `$STATE_DIRECTORY` when systemd sets it, else the working directory.
pub const DEFAULT_DB_FILE: &str = "openpush.redb";

/// One key of the config file: its name, how a value is read, how the effective value prints.
struct Key {
    name: &'static str,
    /// Reads a value into the config (`listen` adds one more address).
    set: fn(&mut Config, &str) -> Result<(), ConfigError>,
    /// The effective value as the file spells it: one, or one per address for `listen`.
    get: fn(&Config) -> Vec<String>,
}

/// Builds the [`KEYS`] table from entries `"name" => |c, v| set, |c| get;`: `set` stores
/// in config `c` the value read from the text `v` (an error is returned with `?`); `get`
/// prints `c`'s value, a `String` or, for a key that repeats, a `Vec<String>`.
macro_rules! keys {
    ($($name:literal => |$c:ident, $v:ident| $set:expr, |$g:ident| $get:expr;)*) => {
        &[$(Key {
            name: $name,
            set: |$c, $v| {
                $set;
                Ok(())
            },
            get: |$g| Printed::values($get),
        }),*]
    };
}

/// What a key's `get` returns: one value, or several (one line each).
trait Printed {
    fn values(self) -> Vec<String>;
}

impl Printed for String {
    fn values(self) -> Vec<String> {
        vec![self]
    }
}

impl Printed for Vec<String> {
    fn values(self) -> Vec<String> {
        self
    }
}

/// Every key of the config file, in the order `serve --check` prints them (the
/// "Settings" table of `docs/configuration.md`, then its "Limits" table). [`Config::set`] accepts exactly these.
/// Defaults are the fields' values in [`Config::default`] and [`Limits::default`].
static KEYS: &[Key] = keys! {
    "listen" => |c, v| c.listen.push(parse_addr(v)?),
        |c| c.listen.iter().map(ToString::to_string).collect::<Vec<_>>();
    // Empty: none (what `serve --check` prints without TLS).
    "listen_tls" => |c, v| if !v.is_empty() { c.listen_tls.push(parse_addr(v)?) },
        |c| match c.listen_tls.is_empty() {
            true => vec![String::new()],
            false => c.listen_tls.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
    "tls_cert" => |c, v| c.tls_cert = optional_path(v),
        |c| c.tls_cert.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    "tls_key" => |c, v| c.tls_key = optional_path(v),
        |c| c.tls_key.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    "tls_cert_check_secs" => |c, v| c.tls_cert_check = secs(v, 1, 24 * 3600)?,
        |c| secs_text(c.tls_cert_check);
    "db" => |c, v| c.db = PathBuf::from(v),
        |c| c.db.display().to_string();
    "store" => |c, v| c.store = store_url(v)?,
        |c| c.store.clone();
    "redis_prefix" => |c, v| c.redis_prefix = redis_prefix(v)?,
        |c| c.redis_prefix.clone();
    "redis_require_fsync" => |c, v| c.redis_require_fsync = boolean(v)?,
        |c| c.redis_require_fsync.to_string();
    "control_socket" => |c, v| c.control_socket = Some(PathBuf::from(v)),
        |c| c.control_socket_path().display().to_string();
    // Under the 60 s of common proxies and the ntfy app's 77 s read timeout.
    "keepalive_secs" => |c, v| c.keepalive = secs(v, 1, 59)?,
        |c| secs_text(c.keepalive);
    "retry_secs" => |c, v| c.retry = secs(v, 1, 3600)?,
        |c| secs_text(c.retry);
    "default_ttl_secs" => |c, v| c.default_ttl = secs(v, 0, 365 * 24 * 3600)?,
        |c| secs_text(c.default_ttl);
    "max_ttl_secs" => |c, v| c.max_ttl = secs(v, 0, 365 * 24 * 3600)?,
        |c| secs_text(c.max_ttl);
    "topic_default_ttl_secs" => |c, v| c.topic_default_ttl = secs(v, 0, 365 * 24 * 3600)?,
        |c| secs_text(c.topic_default_ttl);
    "topic_max_ttl_secs" => |c, v| c.topic_max_ttl = secs(v, 0, 365 * 24 * 3600)?,
        |c| secs_text(c.topic_max_ttl);
    "public_url" => |c, v| c.public_url = public_url(v)?,
        |c| c.public_url.clone().unwrap_or_default();
    "upstream_base_url" => |c, v| c.upstream.base_url = upstream_url(v)?,
        |c| c.upstream.base_url.clone().unwrap_or_default();
    "upstream_access_token" => |c, v| c.upstream.access_token = access_token(v)?,
        |c| c.upstream.access_token.as_ref().map(|t| t.0.clone()).unwrap_or_default();
    "upstream_ca_file" => |c, v| c.upstream.ca_file = PathBuf::from(v),
        |c| c.upstream.ca_file.display().to_string();
    "anonymous_access" => |c, v| c.anonymous = anonymous(v)?,
        |c| anonymous_name(c.anonymous).to_owned();
    "autopush_path" => |c, v| c.autopush_path = autopush_path(v)?,
        |c| c.autopush_path.clone().unwrap_or_else(|| "off".into());
    "uaid_expiry_days" => |c, v| c.uaid_expiry = secs(v, 1, 3650)? * 24 * 3600,
        |c| (c.uaid_expiry.as_secs() / (24 * 3600)).to_string();
    "sweep_interval_secs" => |c, v| c.sweep_interval = secs(v, 1, 24 * 3600)?,
        |c| secs_text(c.sweep_interval);
    "db_cache_bytes" => |c, v| c.db_cache_bytes = number(v, 64 * 1024, 1 << 30)?,
        |c| c.db_cache_bytes.to_string();
    "confirm_delay_secs" => |c, v| c.confirm_delay = secs(v, 0, 3600)?,
        |c| secs_text(c.confirm_delay);
    "commit_window_ms" => |c, v| c.commit_window = Duration::from_millis(number(v, 0, 1000)? as u64),
        |c| c.commit_window.as_millis().to_string();
    "log_level" => |c, v| c.log_level = log_level(v)?,
        |c| c.log_level.as_str().to_ascii_lowercase();
    "metrics_public" => |c, v| c.metrics_public = boolean(v)?,
        |c| c.metrics_public.to_string();
    "trusted_proxies" => |c, v| c.trusted_proxies = ip_addrs(v)?,
        |c| c.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    "max_head_bytes" => |c, v| c.limits.max_head_bytes = number(v, 256, 1 << 20)?,
        |c| c.limits.max_head_bytes.to_string();
    "max_headers" => |c, v| c.limits.max_headers = number(v, 4, 1024)?,
        |c| c.limits.max_headers.to_string();
    "max_body_bytes" => |c, v| c.limits.max_body_bytes = number(v, 256, 16 << 20)?,
        |c| c.limits.max_body_bytes.to_string();
    "max_data_bytes" => |c, v| c.limits.max_data_bytes = number(v, 16, 1 << 20)?,
        |c| c.limits.max_data_bytes.to_string();
    "max_title_bytes" => |c, v| c.limits.max_title_bytes = number(v, 8, 1 << 16)?,
        |c| c.limits.max_title_bytes.to_string();
    "max_tags_bytes" => |c, v| c.limits.max_tags_bytes = number(v, 8, 1 << 16)?,
        |c| c.limits.max_tags_bytes.to_string();
    "max_url_bytes" => |c, v| c.limits.max_url_bytes = number(v, 16, 1 << 16)?,
        |c| c.limits.max_url_bytes.to_string();
    "max_actions_bytes" => |c, v| c.limits.max_actions_bytes = number(v, 64, 1 << 16)?,
        |c| c.limits.max_actions_bytes.to_string();
    "max_fields_bytes" => |c, v| c.limits.max_fields_bytes = number(v, 64, 1 << 20)?,
        |c| c.limits.max_fields_bytes.to_string();
    "request_timeout_secs" => |c, v| c.limits.request_timeout = secs(v, 1, 3600)?,
        |c| secs_text(c.limits.request_timeout);
    "idle_timeout_secs" => |c, v| c.limits.idle_timeout = secs(v, 1, 24 * 3600)?,
        |c| secs_text(c.limits.idle_timeout);
    "max_connections" => |c, v| c.limits.max_connections = number(v, 1, 10_000_000)?,
        |c| c.limits.max_connections.to_string();
    "max_stream_buffer_bytes" =>
        |c, v| c.limits.max_stream_buffer_bytes = number(v, 4096, 64 << 20)?,
        |c| c.limits.max_stream_buffer_bytes.to_string();
    "write_timeout_secs" => |c, v| c.limits.write_timeout = secs(v, 1, 3600)?,
        |c| secs_text(c.limits.write_timeout);
    "max_queued_per_client" =>
        |c, v| c.limits.max_queued_per_client = number(v, 1, 10_000_000)? as u64,
        |c| c.limits.max_queued_per_client.to_string();
    "max_queued_bytes_per_client" =>
        |c, v| c.limits.max_queued_bytes_per_client = number(v, 4096, usize::MAX)? as u64,
        |c| c.limits.max_queued_bytes_per_client.to_string();
    "max_clients_per_user" => |c, v| c.limits.max_clients_per_user = number(v, 1, 1_000_000)?,
        |c| c.limits.max_clients_per_user.to_string();
    "max_apps_per_client" => |c, v| c.limits.max_apps_per_client = number(v, 1, 1_000_000)?,
        |c| c.limits.max_apps_per_client.to_string();
    "max_store_bytes" =>
        |c, v| c.limits.max_store_bytes = number(v, 64 * 1024, usize::MAX)? as u64,
        |c| c.limits.max_store_bytes.to_string();
    "anonymous_store_share_percent" =>
        |c, v| c.limits.anonymous_store_share_percent = number(v, 0, 100)? as u64,
        |c| c.limits.anonymous_store_share_percent.to_string();
    "max_topics_per_user" => |c, v| c.limits.max_topics_per_user = number(v, 1, 1_000_000)?,
        |c| c.limits.max_topics_per_user.to_string();
    "max_tokens_per_user" => |c, v| c.limits.max_tokens_per_user = number(v, 1, 10_000)?,
        |c| c.limits.max_tokens_per_user.to_string();
    "max_token_label_bytes" => |c, v| c.limits.max_token_label_bytes = number(v, 1, 4096)?,
        |c| c.limits.max_token_label_bytes.to_string();
    "max_unclaimed_topics" => |c, v| c.limits.max_unclaimed_topics = number(v, 0, 1_000_000)?,
        |c| c.limits.max_unclaimed_topics.to_string();
    "max_queued_per_unclaimed_topic" =>
        |c, v| c.limits.max_queued_per_unclaimed_topic = number(v, 1, 10_000_000)? as u64,
        |c| c.limits.max_queued_per_unclaimed_topic.to_string();
    "max_queued_bytes_per_unclaimed_topic" =>
        |c, v| c.limits.max_queued_bytes_per_unclaimed_topic = number(v, 256, usize::MAX)? as u64,
        |c| c.limits.max_queued_bytes_per_unclaimed_topic.to_string();
    "new_unclaimed_topics_per_hour_per_addr" =>
        |c, v| c.limits.new_unclaimed_topics_per_hour_per_addr = number(v, 1, 1_000_000)? as u32,
        |c| c.limits.new_unclaimed_topics_per_hour_per_addr.to_string();
    "max_queued_per_topic" =>
        |c, v| c.limits.max_queued_per_topic = number(v, 1, 10_000_000)? as u64,
        |c| c.limits.max_queued_per_topic.to_string();
    "max_queued_bytes_per_topic" =>
        |c, v| c.limits.max_queued_bytes_per_topic = number(v, 4096, usize::MAX)? as u64,
        |c| c.limits.max_queued_bytes_per_topic.to_string();
    "max_topics_per_stream" => |c, v| c.limits.max_topics_per_stream = number(v, 1, 4096)?,
        |c| c.limits.max_topics_per_stream.to_string();
    "min_delay_secs" => |c, v| c.limits.min_delay = secs(v, 0, 24 * 3600)?,
        |c| secs_text(c.limits.min_delay);
    "max_delay_secs" => |c, v| c.limits.max_delay = secs(v, 1, 365 * 24 * 3600)?,
        |c| secs_text(c.limits.max_delay);
    "max_scheduled_per_user" =>
        |c, v| c.limits.max_scheduled_per_user = number(v, 0, 1_000_000)?,
        |c| c.limits.max_scheduled_per_user.to_string();
    "max_scheduled_per_addr" =>
        |c, v| c.limits.max_scheduled_per_addr = number(v, 0, 1_000_000)?,
        |c| c.limits.max_scheduled_per_addr.to_string();
    "nextpush_warning_connects" =>
        |c, v| c.limits.nextpush_warning_connects = number(v, 0, 1_000_000)? as u32,
        |c| c.limits.nextpush_warning_connects.to_string();
    "max_uaids_per_addr" => |c, v| c.limits.max_uaids_per_addr = number(v, 1, 1_000_000)?,
        |c| c.limits.max_uaids_per_addr.to_string();
    "max_uaids" => |c, v| c.limits.max_uaids = number(v, 1, 10_000_000)?,
        |c| c.limits.max_uaids.to_string();
    "new_uaids_per_hour_per_addr" =>
        |c, v| c.limits.new_uaids_per_hour_per_addr = number(v, 1, 1_000_000)? as u32,
        |c| c.limits.new_uaids_per_hour_per_addr.to_string();
    "max_channels_per_uaid" => |c, v| c.limits.max_channels_per_uaid = number(v, 1, 100_000)?,
        |c| c.limits.max_channels_per_uaid.to_string();
    "max_queued_per_uaid" =>
        |c, v| c.limits.max_queued_per_uaid = number(v, 1, 10_000_000)? as u64,
        |c| c.limits.max_queued_per_uaid.to_string();
    "max_queued_bytes_per_uaid" =>
        |c, v| c.limits.max_queued_bytes_per_uaid = number(v, 4096, usize::MAX)? as u64,
        |c| c.limits.max_queued_bytes_per_uaid.to_string();
    "max_queued_bytes_all_uaids" =>
        |c, v| c.limits.max_queued_bytes_all_uaids = number(v, 4096, usize::MAX)? as u64,
        |c| c.limits.max_queued_bytes_all_uaids.to_string();
    "max_ws_message_bytes" => |c, v| c.limits.max_ws_message_bytes = number(v, 256, 1 << 20)?,
        |c| c.limits.max_ws_message_bytes.to_string();
    "hello_timeout_secs" => |c, v| c.limits.hello_timeout = secs(v, 1, 3600)?,
        |c| secs_text(c.limits.hello_timeout);
    "ws_idle_timeout_secs" => |c, v| c.limits.ws_idle_timeout = secs(v, 10, 24 * 3600)?,
        |c| secs_text(c.limits.ws_idle_timeout);
    "max_name_bytes" => |c, v| c.limits.max_name_bytes = number(v, 8, 4096)?,
        |c| c.limits.max_name_bytes.to_string();
    "store_queue" => |c, v| c.limits.store_queue = number(v, 16, 1 << 20)?,
        |c| c.limits.store_queue.to_string();
    "max_connections_per_addr" =>
        |c, v| c.limits.max_connections_per_addr = number(v, 1, 1_000_000)? as u32,
        |c| c.limits.max_connections_per_addr.to_string();
    "requests_per_sec_per_addr" => |c, v| c.limits.requests_per_addr.per_sec = rate(v)?,
        |c| c.limits.requests_per_addr.per_sec.to_string();
    "request_burst_per_addr" =>
        |c, v| c.limits.requests_per_addr.burst = number(v, 1, 1_000_000)? as f64,
        |c| c.limits.requests_per_addr.burst.to_string();
    "posts_per_sec_per_token" => |c, v| c.limits.posts_per_token.per_sec = rate(v)?,
        |c| c.limits.posts_per_token.per_sec.to_string();
    "post_burst_per_token" =>
        |c, v| c.limits.posts_per_token.burst = number(v, 1, 1_000_000)? as f64,
        |c| c.limits.posts_per_token.burst.to_string();
    "channel_changes_per_sec_per_uaid" =>
        |c, v| c.limits.channel_changes_per_uaid.per_sec = rate(v)?,
        |c| c.limits.channel_changes_per_uaid.per_sec.to_string();
    "channel_change_burst_per_uaid" =>
        |c, v| c.limits.channel_changes_per_uaid.burst = number(v, 1, 1_000_000)? as f64,
        |c| c.limits.channel_changes_per_uaid.burst.to_string();
    "vapid_verifications_per_sec" =>
        |c, v| c.limits.vapid_verifications.per_sec = rate(v)?,
        |c| c.limits.vapid_verifications.per_sec.to_string();
    "vapid_verification_burst" =>
        |c, v| c.limits.vapid_verifications.burst = number(v, 1, 1_000_000)? as f64,
        |c| c.limits.vapid_verifications.burst.to_string();
    "login_free_failures" => |c, v| c.limits.login_free_failures = number(v, 1, 1000)? as u32,
        |c| c.limits.login_free_failures.to_string();
    "login_max_delay_secs" => |c, v| c.limits.login_max_delay = secs(v, 1, 24 * 3600)?,
        |c| secs_text(c.limits.login_max_delay);
    "upstream_queue" => |c, v| c.upstream.queue = number(v, 1, 65_536)?,
        |c| c.upstream.queue.to_string();
    "upstream_timeout_secs" => |c, v| c.upstream.timeout = secs(v, 1, 300)?,
        |c| secs_text(c.upstream.timeout);
    "upstream_retries" => |c, v| c.upstream.retries = number(v, 0, 10)? as u32,
        |c| c.upstream.retries.to_string();
};

/// The names of every config-file key, in the order `serve --check` prints them.
pub fn keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// Every size, count and time the server enforces. Defaults are sized for a 128 MB router.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Request line plus headers. Past it: 414 (no complete request line) or 431.
    pub max_head_bytes: usize,
    /// Header lines per request; past it: 431.
    pub max_headers: usize,
    /// Request body, content-length or chunked; past it: 413. A message's `data` has its own
    /// limit below; this one leaves room for the envelope and pretty-printed JSON.
    pub max_body_bytes: usize,
    /// `data` of a message as compact JSON; FCM's limit, which app servers already respect.
    pub max_data_bytes: usize,
    /// An ntfy message's title; ntfy's own limit (1024), far more than a notification shows.
    pub max_title_bytes: usize,
    /// An ntfy message's tags together (without separators); ntfy's own limit (512).
    pub max_tags_bytes: usize,
    /// An ntfy message's `click` URL, and its `icon` URL, each.
    pub max_url_bytes: usize,
    /// An ntfy message's action buttons (at most 3), as the JSON array that is stored.
    pub max_actions_bytes: usize,
    /// What a message carries besides its data (ntfy's title, tags, click, icon and
    /// actions; autopush's encryption headers) together, as stored. With `max_data_bytes`
    /// it bounds every stored message, so that a page of messages that a stream reads
    /// stays small: 4096 + 4096 is ntfy's own bound on a JSON publish (twice its message
    /// limit).
    pub max_fields_bytes: usize,
    /// From the first byte of a request to its last (slowloris); past it: 408.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection is kept before it is closed.
    pub idle_timeout: Duration,
    /// Open TCP connections in total; past it new connections get 503 and are closed.
    pub max_connections: usize,
    /// Unsent messages with a TTL of 0 (never stored) a stream may hold, in bytes; past it
    /// the stream is closed as too slow. Stored messages are read from the store a page at
    /// a time and need no buffer.
    pub max_stream_buffer_bytes: usize,
    /// How long one write to a stream may stall before the stream is closed.
    pub write_timeout: Duration,
    /// Undelivered messages kept per client; past it a post gets 429 (nothing acknowledged
    /// is ever dropped to make room).
    pub max_queued_per_client: u64,
    /// Bytes of undelivered messages kept per client, as stored; past it a post gets 429.
    pub max_queued_bytes_per_client: u64,
    /// Clients (devices) per user.
    pub max_clients_per_user: usize,
    /// Applications per client.
    pub max_apps_per_client: usize,
    /// Length of user names, client names, registration ids and collapse keys.
    pub max_name_bytes: usize,
    /// Jobs waiting for the store thread; past it requests get 503 instead of piling up.
    pub store_queue: usize,
    /// Open connections per client address (IPv6: per /64); trusted proxies are exempt.
    pub max_connections_per_addr: u32,
    /// Requests per second per client address, and the burst allowed above it (429).
    pub requests_per_addr: Rate,
    /// Posts per second per routing token, and the burst allowed above it (429), so one
    /// noisy app server cannot flood a device.
    pub posts_per_token: Rate,
    /// Autopush channel registrations and unregistrations that change something, per
    /// second per user agent, and the burst above it (answered 429): each is a commit to
    /// the flash, so one WebSocket cannot wear it out.
    pub channel_changes_per_uaid: Rate,
    /// VAPID signature verifications per second, and the burst above it, for pushes to
    /// `/wpush/v2/` endpoints from others than the endpoint's known signers (answered 429
    /// past it): each costs as much as tens of requests, see `crate::signers`.
    pub vapid_verifications: Rate,
    /// Failed logins per address (twice as many per user name) before each try must wait
    /// (1 s, doubling).
    pub login_free_failures: u32,
    /// Bytes all stored messages may take (record and key, not the file's free pages);
    /// past it a post gets 507. A router's flash overlay may have only a few MB free.
    pub max_store_bytes: u64,
    /// The part of `max_store_bytes`, in percent, that messages in queues open to senders
    /// without an account (endpoints, routing tokens, autopush, the Matrix gateway) may
    /// take, so strangers never crowd out the users' own topics; past it: 507.
    pub anonymous_store_share_percent: u64,
    /// Topics a user may own; past it a new topic gets 403.
    pub max_topics_per_user: usize,
    /// ntfy access tokens a user may have; past it a new one gets 403 (ntfy's own bound is
    /// 60). Each is a record of about 100 bytes.
    pub max_tokens_per_user: usize,
    /// Bytes of an access token's label; past it 400.
    pub max_token_label_bytes: usize,
    /// Endpoint topics that app servers posted to before any user subscribed; past it a post
    /// to a new one gets 429 (removed once empty and a day old). With 16 KiB each at most,
    /// 128 of them hold a quarter of the default anonymous share.
    pub max_unclaimed_topics: usize,
    /// Messages an endpoint topic keeps while no user has subscribed to it (a stranger's
    /// guess of an endpoint name must not turn into stored data); past it: 429.
    pub max_queued_per_unclaimed_topic: u64,
    /// Bytes of those, as stored; past it: 429.
    pub max_queued_bytes_per_unclaimed_topic: u64,
    /// Endpoint topics one address (IPv6: per /64) may create per hour by posting to
    /// them; past it a post to a new one gets 429. The host itself is not limited.
    pub new_unclaimed_topics_per_hour_per_addr: u32,
    /// Messages kept per topic until their TTL ends; past it a publish gets 429.
    pub max_queued_per_topic: u64,
    /// Bytes of messages kept per topic, as stored; past it a publish gets 429.
    pub max_queued_bytes_per_topic: u64,
    /// Topics one ntfy subscription may join (`/a,b,c/json`); past it: 400.
    pub max_topics_per_stream: usize,
    /// The shortest delay of an ntfy message sent later (`X-Delay`, `In`, `At`); shorter:
    /// 400. ntfy's own (10 s).
    pub min_delay: Duration,
    /// The longest delay; longer: 400. ntfy's own (3 days): a message waits on the flash
    /// that long.
    pub max_delay: Duration,
    /// ntfy messages a user may have waiting to be sent later; past it: 429 until one is
    /// sent. Each is a stored message in the budget until then.
    pub max_scheduled_per_user: usize,
    /// The same for requests without a user, per address (IPv6: per /64; the host itself
    /// is one); 0: they may not schedule.
    pub max_scheduled_per_addr: usize,
    /// Opens of one NextPush device's stream within 12 hours past which the new stream
    /// starts with a `warning` event (the app tells its user the connection is unstable);
    /// 0: never.
    pub nextpush_warning_connects: u32,
    /// Autopush user agents (uaids) created from one address (IPv6: per /64) and still
    /// known; past it a hello without a known uaid is refused (WebSocket close 1013).
    pub max_uaids_per_addr: usize,
    /// Autopush user agents known at all, from every address; past it a hello without a
    /// known uaid is refused (WebSocket close 1013).
    pub max_uaids: usize,
    /// Autopush user agents one address (IPv6: per /64) may create per hour; past it a
    /// hello without a known uaid is refused (close 1013). The host itself is not limited.
    pub new_uaids_per_hour_per_addr: u32,
    /// Channels (subscriptions) per autopush user agent; past it `register` gets status 413.
    pub max_channels_per_uaid: usize,
    /// Unacknowledged messages kept per autopush user agent; past it a push gets 429.
    pub max_queued_per_uaid: u64,
    /// Bytes of unacknowledged messages per autopush user agent, as stored; past it 429.
    pub max_queued_bytes_per_uaid: u64,
    /// Bytes of the messages of every autopush user agent together, as the store's budget
    /// counts them; past it a push gets 507. Anyone who reaches the door can make user
    /// agents, so they must not take the whole anonymous share from the other doors.
    pub max_queued_bytes_all_uaids: u64,
    /// A WebSocket text message from a client that takes requests (autopush); past it the
    /// connection is closed (1009).
    pub max_ws_message_bytes: usize,
    /// How long an autopush client has after the WebSocket upgrade to say hello.
    pub hello_timeout: Duration,
    /// A WebSocket client that sends nothing (not even the pong to a keepalive ping) for
    /// this long is disconnected.
    pub ws_idle_timeout: Duration,
    /// The longest wait after failed logins.
    pub login_max_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_headers: 48,
            max_body_bytes: 64 * 1024,
            max_data_bytes: 4096,
            max_title_bytes: 1024,
            max_tags_bytes: 512,
            max_url_bytes: 2048,
            max_actions_bytes: 2048,
            max_fields_bytes: 4096,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 20_000,
            max_stream_buffer_bytes: 256 * 1024,
            write_timeout: Duration::from_secs(30),
            max_queued_per_client: 1000,
            max_queued_bytes_per_client: 2 * 1024 * 1024,
            max_clients_per_user: 64,
            max_apps_per_client: 256,
            max_name_bytes: 256,
            store_queue: 8192,
            max_connections_per_addr: 256,
            requests_per_addr: Rate {
                per_sec: 20.0,
                burst: 200.0,
            },
            posts_per_token: Rate {
                per_sec: 10.0,
                burst: 200.0,
            },
            channel_changes_per_uaid: Rate {
                per_sec: 0.2,
                burst: 128.0,
            },
            vapid_verifications: Rate {
                per_sec: 2.0,
                burst: 20.0,
            },
            login_free_failures: 10,
            max_store_bytes: 32 * 1024 * 1024,
            anonymous_store_share_percent: 25,
            max_topics_per_user: 256,
            max_tokens_per_user: 20,
            max_token_label_bytes: 256,
            max_unclaimed_topics: 128,
            max_queued_per_unclaimed_topic: 4,
            max_queued_bytes_per_unclaimed_topic: 16 * 1024,
            new_unclaimed_topics_per_hour_per_addr: 16,
            max_uaids: 1000,
            new_uaids_per_hour_per_addr: 8,
            max_queued_per_topic: 1000,
            max_queued_bytes_per_topic: 1024 * 1024,
            max_topics_per_stream: 64,
            min_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(3 * 24 * 3600),
            max_scheduled_per_user: 100,
            max_scheduled_per_addr: 10,
            nextpush_warning_connects: 144,
            max_uaids_per_addr: 64,
            max_channels_per_uaid: 128,
            max_queued_per_uaid: 1000,
            max_queued_bytes_per_uaid: 2 * 1024 * 1024,
            max_queued_bytes_all_uaids: 4 * 1024 * 1024,
            max_ws_message_bytes: 16 * 1024,
            hello_timeout: Duration::from_secs(10),
            ws_idle_timeout: Duration::from_secs(180),
            login_max_delay: Duration::from_secs(60),
        }
    }
}

/// The server's whole configuration: the file's keys over their defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the server listens for plain HTTP.
    pub listen: Vec<SocketAddr>,
    /// Where the server listens for TLS connections (feature `tls`), with `tls_cert`.
    pub listen_tls: Vec<SocketAddr>,
    /// The certificate chain (PEM, the server's certificate first) for `listen_tls`.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// How often the certificate files are checked for a renewal (then loaded again).
    pub tls_cert_check: Duration,
    /// The redb database file.
    pub db: PathBuf,
    /// The local control socket the CLI uses while the server holds the database lock.
    /// Default: the database path with `.sock` appended.
    pub control_socket: Option<PathBuf>,
    /// SSE keepalive comment interval. Under the 60 s idle timeout of common proxies and the
    /// 77 s read timeout of the ntfy app; not more often, to spare phone batteries.
    pub keepalive: Duration,
    /// `retry:` hint sent to SSE clients.
    pub retry: Duration,
    /// TTL of a message that does not say (FCM's default: four weeks).
    pub default_ttl: Duration,
    /// Longest TTL accepted; longer ones are clamped to it.
    pub max_ttl: Duration,
    /// How often expired messages are swept from the store.
    pub sweep_interval: Duration,
    /// Redb page cache. Redb's own default is 1 GiB, far past a router's RAM.
    pub db_cache_bytes: usize,
    /// Empty: the redb file `db`. A `redis://` URL: a Redis/Valkey server that several
    /// nodes share (the `redis` feature).
    pub store: String,
    /// The prefix of every Redis key, so that several installations can share one server.
    pub redis_prefix: String,
    /// Refuse to start on a Redis that does not fsync each write before it answers.
    pub redis_require_fsync: bool,
    /// How long confirmations and acks may wait to share a message's commit before they
    /// get one of their own; a crash within it delivers their messages again.
    pub confirm_delay: Duration,
    /// How long a group commit stays open for more writes after its first one, as long as
    /// they keep coming (at most 1 ms apart); 0: commit once no write waits.
    pub commit_window: Duration,
    /// The most verbose log level written.
    pub log_level: log::LevelFilter,
    /// Reverse proxies whose `X-Forwarded-For` names the client. Connections from them are
    /// not capped per address; their requests without the header come from the host itself
    /// and are not rate limited.
    pub trusted_proxies: Vec<IpAddr>,
    /// Serve `/metrics` to any address, not only to loopback.
    pub metrics_public: bool,
    /// The server's address as phones and app servers reach it (`https://push.example.org`),
    /// for the Web Push endpoints it hands out. Unset: taken from each request's `Host`
    /// (and `X-Forwarded-Proto` from a trusted proxy).
    pub public_url: Option<String>,
    /// What requests without a user may do with topics.
    pub anonymous: Anonymous,
    /// The path of the autopush WebSocket door (Firefox, Sunup); `None`: the door is off.
    pub autopush_path: Option<String>,
    /// An autopush user agent not seen for this long is deleted with its channels.
    pub uaid_expiry: Duration,
    /// TTL of a topic message whose sender gave none (ntfy's cache time: 12 hours).
    pub topic_default_ttl: Duration,
    /// Longest TTL of a topic message; longer ones are shortened to it.
    pub topic_max_ttl: Duration,
    /// Poll requests to ntfy's upstream server, for iPhones.
    pub upstream: Upstream,
    /// Sizes, counts and times that bound what a client may ask.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: Vec::new(),
            listen_tls: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_cert_check: Duration::from_secs(30),
            db: default_db_path(),
            control_socket: None,
            keepalive: Duration::from_secs(25),
            retry: Duration::from_secs(5),
            default_ttl: Duration::from_secs(4 * 7 * 24 * 3600),
            max_ttl: Duration::from_secs(4 * 7 * 24 * 3600),
            sweep_interval: Duration::from_secs(60),
            db_cache_bytes: 4 * 1024 * 1024,
            store: String::new(),
            redis_prefix: "openpush".into(),
            redis_require_fsync: true,
            confirm_delay: Duration::from_secs(300),
            commit_window: Duration::from_millis(4),
            log_level: log::LevelFilter::Info,
            trusted_proxies: vec![
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ],
            metrics_public: false,
            public_url: None,
            anonymous: Anonymous::EndpointWrite,
            autopush_path: Some("/".into()),
            uaid_expiry: Duration::from_secs(60 * 24 * 3600),
            topic_default_ttl: Duration::from_secs(12 * 3600),
            topic_max_ttl: Duration::from_secs(3 * 24 * 3600),
            upstream: Upstream::default(),
            limits: Limits::default(),
        }
    }
}

fn default_db_path() -> PathBuf {
    match std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several directories separated by ':'; the first is ours.
        Some(dirs) if !dirs.is_empty() => {
            let dirs = dirs.to_string_lossy().into_owned();
            let first = dirs.split(':').next().unwrap_or_default();
            Path::new(first).join(DEFAULT_DB_FILE)
        }
        _ => PathBuf::from(DEFAULT_DB_FILE),
    }
}

/// A configuration that cannot be used, with the key or line and why.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// Reads `path` on top of the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        let mut config = Config::default();
        config
            .apply_text(&text)
            .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))?;
        Ok(config)
    }

    /// Applies the `key = value` lines of a config file, in order; `#` starts a comment.
    pub fn apply_text(&mut self, text: &str) -> Result<(), ConfigError> {
        for (index, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| {
                ConfigError(format!("line {}: expected `key = value`", index + 1))
            })?;
            self.set(key.trim(), unquote(value.trim()))
                .map_err(|e| ConfigError(format!("line {}: {}", index + 1, e.0)))?;
        }
        Ok(())
    }

    /// Sets one option by its config-file name. An error names the key (and, for an
    /// unknown key, the known key it most likely means).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let Some(known) = KEYS.iter().find(|k| k.name == key) else {
            let hint = match suggest(key) {
                Some(known) => format!("; did you mean {known:?}?"),
                None => String::new(),
            };
            return Err(ConfigError(format!("unknown option {key:?}{hint}")));
        };
        (known.set)(self, value).map_err(|e| ConfigError(format!("{key}: {}", e.0)))
    }

    /// Checks what single options cannot: relations between them.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        if self.listen.is_empty() && self.listen_tls.is_empty() {
            self.listen
                .push(DEFAULT_LISTEN.parse().expect("default address parses"));
        }
        if !self.listen_tls.is_empty() {
            if !cfg!(feature = "tls") {
                return Err(ConfigError(
                    "listen_tls: this build has no TLS (Cargo feature `tls`)".into(),
                ));
            }
            if self.tls_paths().is_none() {
                return Err(ConfigError(
                    "listen_tls needs tls_cert and tls_key (PEM files)".into(),
                ));
            }
        }
        if self.default_ttl > self.max_ttl {
            return Err(ConfigError(format!(
                "default_ttl_secs ({}) is above max_ttl_secs ({})",
                self.default_ttl.as_secs(),
                self.max_ttl.as_secs()
            )));
        }
        if self.topic_default_ttl > self.topic_max_ttl {
            return Err(ConfigError(format!(
                "topic_default_ttl_secs ({}) is above topic_max_ttl_secs ({})",
                self.topic_default_ttl.as_secs(),
                self.topic_max_ttl.as_secs()
            )));
        }
        if self.limits.ws_idle_timeout <= self.keepalive {
            return Err(ConfigError(
                "ws_idle_timeout_secs must be above keepalive_secs: clients answer the keepalive ping"
                    .into(),
            ));
        }
        if self.limits.min_delay > self.limits.max_delay {
            return Err(ConfigError(format!(
                "min_delay_secs ({}) is above max_delay_secs ({})",
                self.limits.min_delay.as_secs(),
                self.limits.max_delay.as_secs()
            )));
        }
        if self.limits.max_data_bytes > self.limits.max_body_bytes {
            return Err(ConfigError(
                "max_data_bytes is above max_body_bytes: no message could use it".into(),
            ));
        }
        self.upstream.validate(self.public_url.as_deref())
    }

    /// The certificate and key files, when both are set.
    #[cfg(feature = "tls")]
    pub fn tls_paths(&self) -> Option<crate::tls::Paths> {
        Some(crate::tls::Paths {
            chain: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }

    /// Whether both certificate files are set (a build without TLS refuses them).
    #[cfg(not(feature = "tls"))]
    pub fn tls_paths(&self) -> Option<()> {
        self.tls_cert.as_ref().zip(self.tls_key.as_ref()).map(drop)
    }

    /// The control socket: `control_socket`, else beside the database.
    pub fn control_socket_path(&self) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(|| control_socket_for(&self.db))
    }

    /// The store as the log names it: the redb file, or the Redis server without its
    /// password.
    pub fn store_shown(&self) -> String {
        match self.store.rsplit_once('@') {
            _ if self.store.is_empty() => self.db.display().to_string(),
            Some((_, host)) => format!("redis://{host} (prefix {})", self.redis_prefix),
            None => format!("{} (prefix {})", self.store, self.redis_prefix),
        }
    }

    /// What the store thread needs of the configuration.
    pub fn store_options(&self) -> crate::store::Options {
        crate::store::Options {
            redis: (!self.store.is_empty()).then(|| crate::store::RedisOptions {
                url: self.store.clone(),
                prefix: self.redis_prefix.clone(),
                require_fsync: self.redis_require_fsync,
            }),
            cache_bytes: self.db_cache_bytes,
            queue: self.limits.store_queue,
            confirm_delay: self.confirm_delay,
            commit_window: self.commit_window,
        }
    }
}

impl Config {
    /// The effective value of every key, in [`keys()`] order, as the config file spells it
    /// (`listen` once per address).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        KEYS.iter()
            .flat_map(|key| (key.get)(self).into_iter().map(|value| (key.name, value)))
            .collect()
    }

    /// The effective configuration as a config file: one `key = value` line per key, which
    /// [`Config::apply_text`] reads back to the same values. What `serve --check` prints.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (key, value) in self.entries() {
            text.push_str(key);
            text.push_str(" = ");
            text.push_str(&quote(&value));
            text.push('\n');
        }
        text
    }
}

/// A value as the file must spell it: quoted when a `#`, surrounding space or quote
/// would otherwise change what is read back.
fn quote(value: &str) -> String {
    let plain = !value.contains('#')
        && value.trim() == value
        && !value.starts_with(['"', '\''])
        && !value.ends_with(['"', '\'']);
    if plain {
        value.to_owned()
    } else {
        format!("\"{value}\"")
    }
}

/// The known key that an unknown `key` most likely misspells: a small edit distance, or
/// the known key with a suffix the user left out (`keepalive` for `keepalive_secs`).
fn suggest(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let (best, distance) = keys()
        .map(|known| (known, edit_distance(&key, known)))
        .min_by_key(|(_, d)| *d)?;
    if distance <= (key.len() / 4).max(2) {
        return Some(best);
    }
    keys().find(|known| key.len() >= 4 && known.starts_with(&key))
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The control socket that belongs to a database file.
pub fn control_socket_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".sock");
    PathBuf::from(name)
}

fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value)
}

/// A file path; the empty value unsets it.
fn optional_path(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

/// A socket address, `127.0.0.1:8080` or `[::]:8080`.
pub fn parse_addr(value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError(format!(
            "{value:?} is not an address like 127.0.0.1:8080 or [::]:8080"
        ))
    })
}

/// An `http(s)://host[:port]` origin, optionally with a path prefix; no trailing slash.
fn autopush_path(value: &str) -> Result<Option<String>, ConfigError> {
    match value {
        "off" => Ok(None),
        path if path.starts_with('/')
            && path.len() <= 256
            && path
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#') =>
        {
            Ok(Some(path.to_owned()))
        }
        _ => Err(ConfigError(
            "expected `off` or a path such as `/` or `/autopush-8f2c1e`".into(),
        )),
    }
}

fn public_url(value: &str) -> Result<Option<String>, ConfigError> {
    let value = value.trim_end_matches('/');
    if value.is_empty() {
        return Ok(None);
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => {
            Ok(Some(value.to_owned()))
        }
        _ => Err(ConfigError(format!(
            "{value:?} is not an address like https://push.example.org"
        ))),
    }
}

fn number(value: &str, min: usize, max: usize) -> Result<usize, ConfigError> {
    let n: usize = value
        .parse()
        .map_err(|_| ConfigError(format!("{value:?} is not a whole number")))?;
    if n < min || n > max {
        return Err(ConfigError(if max == usize::MAX {
            format!("must be at least {min}, not {n}")
        } else {
            format!("must be between {min} and {max}, not {n}")
        }));
    }
    Ok(n)
}

/// Events per second; 0 turns the limit off.
fn rate(value: &str) -> Result<f64, ConfigError> {
    let r: f64 = value
        .parse()
        .map_err(|_| ConfigError(format!("{value:?} is not a number")))?;
    if !(0.0..=1e9).contains(&r) {
        return Err(ConfigError(format!(
            "must be between 0 and 1000000000, not {value}"
        )));
    }
    Ok(r)
}

fn log_level(value: &str) -> Result<log::LevelFilter, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError(format!(
            "{value:?} is not error, warn, info, debug or trace"
        ))
    })
}

fn anonymous(value: &str) -> Result<Anonymous, ConfigError> {
    match value {
        "none" => Ok(Anonymous::None),
        "endpoint-write" => Ok(Anonymous::EndpointWrite),
        "read-write" => Ok(Anonymous::ReadWrite),
        _ => Err(ConfigError(format!(
            "{value:?} is not none, endpoint-write or read-write"
        ))),
    }
}

fn anonymous_name(anonymous: Anonymous) -> &'static str {
    match anonymous {
        Anonymous::None => "none",
        Anonymous::EndpointWrite => "endpoint-write",
        Anonymous::ReadWrite => "read-write",
    }
}

/// IP addresses separated by commas or spaces.
fn ip_addrs(value: &str) -> Result<Vec<IpAddr>, ConfigError> {
    value
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| ConfigError(format!("{s:?} is not an IP address")))
        })
        .collect()
}

/// `store`: empty, or a `redis://` URL.
fn store_url(value: &str) -> Result<String, ConfigError> {
    if value.is_empty() || value.starts_with("redis://") {
        Ok(value.to_owned())
    } else {
        Err(ConfigError(
            "store must be empty (the redb file named by db) or a redis:// URL".into(),
        ))
    }
}

/// `redis_prefix`: letters, digits, `-`, `_` and `.`, 1 to 64 of them.
fn redis_prefix(value: &str) -> Result<String, ConfigError> {
    let valid = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(ConfigError(format!(
            "redis_prefix {value:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

fn boolean(value: &str) -> Result<bool, ConfigError> {
    match value {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(ConfigError(format!("{value:?} is not true or false"))),
    }
}

fn secs(value: &str, min: usize, max: usize) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(number(value, min, max)? as u64))
}

fn secs_text(duration: Duration) -> String {
    duration.as_secs().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sets_options_and_repeats_listen() {
        let mut c = Config::default();
        c.apply_text(
            "# comment\nlisten = 127.0.0.1:1\nlisten = \"[::1]:2\" # two\nkeepalive_secs = 7\n\nmax_queued_per_client=5\n",
        )
        .unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.keepalive, Duration::from_secs(7));
        assert_eq!(c.limits.max_queued_per_client, 5);
    }

    #[test]
    fn unknown_key_and_bad_value_name_the_line() {
        let mut c = Config::default();
        let e = c.apply_text("\nkeepalive = 3\n").unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{e}");
        let e = c.apply_text("keepalive_secs = soon\n").unwrap_err();
        assert!(e.0.contains("not a whole number"), "{e}");
        let e = c.apply_text("keepalive_secs = 0\n").unwrap_err();
        assert_eq!(
            e.0,
            "line 1: keepalive_secs: must be between 1 and 59, not 0"
        );
    }

    #[test]
    fn range_errors_are_plain_words() {
        let mut c = Config::default();
        for (line, want) in [
            (
                "retry_secs = 0",
                "retry_secs: must be between 1 and 3600, not 0",
            ),
            (
                "max_queued_bytes_per_client = 5",
                "max_queued_bytes_per_client: must be at least 4096, not 5",
            ),
            (
                "posts_per_sec_per_token = -1",
                "posts_per_sec_per_token: must be between 0 and 1000000000, not -1",
            ),
            (
                "log_level = loud",
                "log_level: \"loud\" is not error, warn, info, debug or trace",
            ),
        ] {
            let e = c.apply_text(line).unwrap_err();
            assert_eq!(e.0, format!("line 1: {want}"));
            assert!(!e.0.contains("..="), "{e}");
        }
    }

    #[test]
    fn a_misspelled_key_gets_a_suggestion() {
        let mut c = Config::default();
        for (typo, known) in [
            ("max_conections", "max_connections"),
            ("keepalive", "keepalive_secs"),
            ("Log_Level", "log_level"),
            ("trusted_proxy", "trusted_proxies"),
            ("listn", "listen"),
        ] {
            let e = c.set(typo, "1").unwrap_err();
            assert_eq!(
                e.0,
                format!("unknown option {typo:?}; did you mean {known:?}?")
            );
        }
        let e = c.set("colour", "blue").unwrap_err();
        assert_eq!(e.0, "unknown option \"colour\"");
    }

    /// A config with every key away from its default (and a `#` in a path).
    const EVERY_KEY: &str = "
listen = 127.0.0.1:1
listen = [::1]:2
listen_tls = 127.0.0.1:3
tls_cert = /etc/ssl/acme/push.example.org.fullchain.crt
tls_key = /etc/ssl/acme/push.example.org.key
tls_cert_check_secs = 41
db = /tmp/a #b/x.redb
store = redis://:secret@127.0.0.1:6390/2
redis_prefix = push-lan
redis_require_fsync = false
control_socket = /tmp/ctl.sock
keepalive_secs = 7
retry_secs = 8
default_ttl_secs = 9
max_ttl_secs = 10
topic_default_ttl_secs = 11
topic_max_ttl_secs = 12
public_url = https://push.example.org/
upstream_base_url = https://ntfy.example.net/
upstream_access_token = tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2
upstream_ca_file = /etc/ssl/cert.pem
anonymous_access = read-write
autopush_path = /ap-1
uaid_expiry_days = 2
sweep_interval_secs = 13
db_cache_bytes = 100000
confirm_delay_secs = 38
commit_window_ms = 39
log_level = debug
metrics_public = yes
trusted_proxies = 10.0.0.1 fe80::1
max_head_bytes = 1000
max_headers = 5
max_body_bytes = 3000
max_data_bytes = 2000
max_title_bytes = 40
max_tags_bytes = 41
max_url_bytes = 42
max_actions_bytes = 430
max_fields_bytes = 440
request_timeout_secs = 14
idle_timeout_secs = 15
max_connections = 16
max_stream_buffer_bytes = 5000
write_timeout_secs = 17
max_queued_per_client = 18
max_queued_bytes_per_client = 6000
max_clients_per_user = 19
max_apps_per_client = 20
max_store_bytes = 100000
anonymous_store_share_percent = 40
max_topics_per_user = 21
max_tokens_per_user = 43
max_token_label_bytes = 44
max_unclaimed_topics = 22
max_queued_per_unclaimed_topic = 41
max_queued_bytes_per_unclaimed_topic = 4100
new_unclaimed_topics_per_hour_per_addr = 42
max_queued_per_topic = 23
max_queued_bytes_per_topic = 7000
max_topics_per_stream = 24
min_delay_secs = 5
max_delay_secs = 86400
max_scheduled_per_user = 7
max_scheduled_per_addr = 0
nextpush_warning_connects = 37
max_uaids_per_addr = 32
max_uaids = 43
new_uaids_per_hour_per_addr = 44
max_channels_per_uaid = 33
max_queued_per_uaid = 34
max_queued_bytes_per_uaid = 8000
max_queued_bytes_all_uaids = 8100
max_ws_message_bytes = 9000
hello_timeout_secs = 35
ws_idle_timeout_secs = 36
max_name_bytes = 25
store_queue = 26
max_connections_per_addr = 27
requests_per_sec_per_addr = 0.5
request_burst_per_addr = 28
posts_per_sec_per_token = 0
post_burst_per_token = 29
channel_changes_per_sec_per_uaid = 0.05
channel_change_burst_per_uaid = 33
vapid_verifications_per_sec = 2.5
vapid_verification_burst = 40
login_free_failures = 30
login_max_delay_secs = 31
upstream_queue = 45
upstream_timeout_secs = 46
upstream_retries = 4
";

    #[test]
    fn printed_config_reads_back_to_the_same_values() {
        let mut every = Config::default();
        // The `#` must survive: quoted in the file.
        every
            .apply_text(&EVERY_KEY.replace("/tmp/a #b/x.redb", "\"/tmp/a #b/x.redb\""))
            .unwrap();
        every.validate().unwrap();
        for mut c in [every, Config::default()] {
            c.validate().unwrap();
            let text = c.to_text();
            let mut back = Config::default();
            back.apply_text(&text).unwrap();
            back.validate().unwrap();
            let with_socket = |c: &Config| {
                let mut c = c.clone();
                c.control_socket = Some(c.control_socket_path());
                format!("{c:?}")
            };
            assert_eq!(with_socket(&back), with_socket(&c), "{text}");
            assert_eq!(back.to_text(), text);
        }
    }

    #[test]
    fn every_key_is_printed_and_settable() {
        let mut c = Config::default();
        c.validate().unwrap();
        let mut printed: Vec<&str> = c.entries().into_iter().map(|(k, _)| k).collect();
        printed.dedup();
        assert_eq!(printed, keys().collect::<Vec<_>>());
        for (key, value) in c.entries() {
            c.set(key, &value)
                .unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
        }
        // The test config above sets every key to something else than its default.
        let set: Vec<&str> = EVERY_KEY
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, _)| k)
            .collect();
        for key in keys() {
            assert!(set.contains(&key), "EVERY_KEY lacks {key}");
        }
    }

    #[test]
    fn the_configuration_doc_documents_every_key() {
        let readme = include_str!("../docs/configuration.md");
        let mut documented = Vec::new();
        for section in ["\n## Settings\n", "\n## Limits\n"] {
            let start = readme.find(section).expect(section);
            let rest = &readme[start..];
            let end = rest[1..].find("\n## ").map_or(rest.len(), |e| e + 1);
            for line in rest[..end].lines().filter(|l| l.starts_with("| `")) {
                let cell = line[1..].split('|').next().unwrap();
                documented.extend(cell.split('`').skip(1).step_by(2));
            }
        }
        let mut keys: Vec<&str> = keys().collect();
        keys.sort_unstable();
        documented.sort_unstable();
        assert_eq!(documented, keys);
    }

    #[test]
    fn default_ttl_above_max_is_refused() {
        let mut c = Config::default();
        c.apply_text("default_ttl_secs = 100\nmax_ttl_secs = 10\n")
            .unwrap();
        assert!(c.validate().is_err());
    }
}

//! openpush as a library: the server's modules, so that the binary, the fuzz targets and
//! the benchmarks share one implementation. The binary (`src/main.rs`) only parses the
//! command line and dispatches.
//!
//! # Architecture
//!
//! One queue, many front doors. Three threads:
//! - **the event loop** (`server`, one `LocalExecutor`): listeners, the hand-written
//!   HTTP/1.1 layer (`http`), the router (`router`) and the doors (`doors`: `openpush` for
//!   OpenPush v0.1, `webpush`, `matrix`, `nextpush`, `ntfy`, and `autopush`: the WebSocket
//!   of Firefox and Sunup at `autopush_path` and its `/wpush/v1|v2/<token>` endpoints,
//!   whose VAPID signatures `vapid` checks, within the budget of verifications `signers`
//!   keeps; `status` is the server's own `/version`, `/health`, `/metrics`; `admin` the
//!   admin page at `/admin/` and its API, for administrators), the live streams
//!   (`stream`, with an encoder per wire format; `ws` frames WebSocket) and the hub that
//!   wakes them (`hub`). It never blocks; its shared state is
//!   `state::ServerState`;
//! - **the store thread** (`store`): the only owner of the redb database. Reads run on
//!   snapshots; writes are grouped into one commit, and a writer hears back only once its
//!   commit is durable. The delivery rules live in `store::queue`, accounts in
//!   `store::accounts`, topics in `store::topics`, messages waiting for their time (ntfy's
//!   delayed delivery) in `store::schedule`, autopush user agents and their channels in
//!   `store::autopush`, the file layout and its upgrades in `store::tables`;
//! - **the hasher thread** (`auth`): Argon2 password checks, behind a login cache and
//!   backoff. A request that a browser sends for another site's page is refused before
//!   any password is checked (`csrf`);
//! - **the upstream thread** (`upstream`, with `upstream_base_url`): the poll requests
//!   that wake iPhones through ntfy's server, over HTTPS, from a bounded queue that the
//!   ntfy door fills and never waits on.
//!
//! A message's way: a door validates its wire format and calls `delivery::publish` with a
//! resolver (token, endpoint or topic → queue, `delivery::endpoints`) that runs inside the
//! write transaction; the queue stores it; the hub tells the queue's streams, which read it
//! back from the store after their cursor and write it in their format. Its id is the one
//! cursor of every queue; a sender is told a name of it instead (`locations`).
//! Configuration (`config`) is one struct, reloaded whole on SIGHUP; every limit has a
//! default there. The CLI (`cli`, `commands`) reaches a running server through its control
//! socket (`control`).
//!
//! # Layers
//!
//! Each module imports only modules of its own step or of the steps before it:
//! 1. leaves: `clock`, `json`, `names`, `secret`, `logger`, `metrics`, `locations`,
//!    `reconnects`, `sse`, `sd_notify`, `vapid`, and TLS (`tls`) with the connection type
//!    over it (`transport`);
//! 2. the store (`store`), which knows nothing of HTTP, the configuration, the doors or the
//!    event loop, and the limiters (`limits`);
//! 3. the configuration (`config`), the hub of live streams (`hub`), `signers`;
//! 4. the HTTP layer (`http`), the WebSocket framing (`ws`), logins (`auth`), the
//!    upstream forwarder (`upstream`), and `error`, the only place where a layer's error
//!    becomes a status;
//! 5. the runtime: `state`, `stream`, `csrf`;
//! 6. delivery (`delivery`): `publish`; the endpoints, built and parsed in one module
//!    (`delivery::endpoints`), with the resolver of the queue each names; the Web Push rules
//!    every endpoint applies (`delivery::webpush`); topics (`delivery::topics`);
//! 7. the door plumbing (`route`: a route table's rows, what a handler returns, the JSON
//!    body, the task a door may run beside its requests);
//! 8. the doors (`doors::<door>`);
//! 9. the router (`router`), the only module that names the doors; the server (`server`);
//!    the command line (`cli`), its commands (`commands`) and the control socket
//!    (`control`).
//!
//! **A door imports the plumbing, `delivery`, the runtime and the store, never another
//! door**; what two doors share moves down a layer. No module imports form a circle. The
//! `layout` tests check both on the source.

// Every public item is documented.
#![warn(missing_docs)]
// No function over 70 lines (clippy.toml) without a reason written beside it.
#![warn(clippy::too_many_lines)]

pub mod auth;
pub mod cli;
pub(crate) mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod csrf;
pub mod delivery;
pub(crate) mod doors;
pub(crate) mod error;
pub mod http;
pub(crate) mod hub;
pub mod json;
#[cfg(test)]
mod layout;
pub(crate) mod limits;
pub(crate) mod locations;
pub mod logger;
pub(crate) mod metrics;
pub mod names;
pub(crate) mod reconnects;
pub mod route;
pub(crate) mod router;
pub(crate) mod sd_notify;
pub mod secret;
pub mod server;
pub(crate) mod signers;
pub mod sse;
pub mod state;
pub mod store;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
#[cfg(feature = "upstream")]
pub mod upstream;
#[cfg(feature = "autopush")]
pub(crate) mod vapid;
pub mod ws;

/// The API version the original OpenPush server reports.
pub const API_VERSION: &str = "0.1.1";

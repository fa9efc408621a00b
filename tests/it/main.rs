//! The end-to-end tests: one test binary (`cargo test --test it`), a module for each part of
//! the server, all sharing [`support`], the harness that runs the real `openpush` binary on
//! `127.0.0.1:0` with a temporary database and talks to it over real sockets.
//!
//! One binary links the harness and the crypto libraries once, not once a file, and runs
//! every test in one process, in parallel (one thread per core; `--test-threads` sets it).
//! So every test keeps to what it owns, and none may depend on running alone:
//! - its own server processes, data directory ([`support::temp_dir`]) and ports (`:0`,
//!   read back from the log); a restart keeps its port;
//! - no change to the test process itself (its environment, working directory, limits or
//!   signal handlers): a setting a server needs goes on that server's command line, config
//!   file or environment; `fds` lowers the open-file limit of its server alone, and every
//!   `openpush` process starts without the runner's systemd variables
//!   ([`support::openpush_command`]);
//! - what it measures is of its own server (`/proc/<pid>`, `/metrics`, its log read up to a
//!   marker with [`support::Server::log_until_now`]), and a wait is for an event with a
//!   deadline ([`support::TIMEOUT`], [`support::wait_until`]), so a loaded machine is
//!   slower, not wrong.
//!
//! One module's tests: `cargo test --test it ntfy::` (a module path prefix), one test:
//! `cargo test --test it -- --exact ntfy::health_says_healthy`. The `layout` module checks
//! that every file here is a declared module and that no other test binary comes back.

mod support;

#[cfg(feature = "admin")]
mod admin;
mod api_application;
mod api_client;
mod api_message;
mod api_misc;
mod api_user;
mod autopush;
mod budget;
mod cli;
#[cfg(feature = "redis")]
mod cluster;
mod crash;
mod delivery;
mod disk_full;
mod fds;
mod forwarded;
mod http_framing;
mod layout;
mod limits;
mod logs;
mod matrix;
mod nextpush;
mod ntfy;
mod ntfy_account;
mod ntfy_errors;
mod ntfy_fields;
mod ntfy_updates;
#[cfg(feature = "upstream")]
mod ntfy_upstream;
mod properties;
mod readme;
mod revocation;
mod security;
mod smoke;
mod store_files;
mod streams;
mod systemd;
#[cfg(feature = "tls")]
mod tls;
mod topics;
mod upgrade;
mod vapid;
mod webpush;
mod webpush_roundtrip;

//! openpush as a library: the server's modules, so that the binary, the fuzz targets and
//! the benchmarks share one implementation. The binary (`src/main.rs`) only parses the
//! command line and dispatches.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod delivery;
pub mod error;
pub mod http;
pub mod hub;
pub mod json;
pub mod limits;
pub mod logger;
pub mod matrix;
pub mod metrics;
pub mod names;
pub mod ntfy;
pub mod sd_notify;
pub mod secret;
pub mod server;
pub mod sse;
pub mod state;
pub mod store;
pub mod stream;
pub mod webpush;
pub mod ws;

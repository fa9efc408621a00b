//! The client side of openpush's wire: what a push client or a webservice writes to the
//! server and reads back, over a plain blocking byte stream.
//!
//! - [`http`]: HTTP/1.1 requests written, response heads and bodies read (`Content-Length`,
//!   chunked, or until close), with a size limit on everything read;
//! - [`sse`]: Server-Sent Events decoded from a byte stream, resumable after a read timeout;
//! - [`base64`]: standard and URL-safe base64, padded or not;
//! - [`json`]: the JSON shapes (Web Push subscription, OpenPush events) and a raw field scanner
//!   that hands on nested JSON byte for byte;
//! - [`url`]: `http://host[:port]/path` split for a socket and a `Host` header.
//!
//! Out of scope: TLS, connection pooling, HTTP/2, proxies, cookies, redirects. It never
//! spawns threads and never allocates without a bound on what it reads.
// No function over 70 lines (clippy.toml) without a reason written beside it.
#![warn(clippy::too_many_lines)]

pub mod base64;
pub mod http;
pub mod json;
pub mod sse;
pub mod url;

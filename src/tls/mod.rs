//! TLS in the server (`listen_tls`): the certificate in use ([`certificate`]), when it
//! expires ([`validity`]) and each connection's session ([`stream`]), on rustls with
//! ring's ciphers.
//!
//! A TLS connection is served exactly as a plain one once [`crate::transport::Conn`] wraps
//! it: every door and stream kind, WebSocket upgrades included. The handshake runs on the
//! event loop as the connection is first read.

pub mod certificate;
pub mod stream;
pub mod validity;

pub use certificate::{Certificate, Paths};
pub use stream::TlsStream;

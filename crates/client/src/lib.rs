//! openpush-client as a library: the modules its binary is made of, public so that the
//! tests check each piece (the RFC 8291 vector, VAPID tokens) on its own.
//!
//! - [`ece`]: RFC 8291 `aes128gcm` encryption and decryption;
//! - [`vapid`]: RFC 8292 tokens and key files; [`keys`]: P-256 keys and randomness;
//! - [`state`]: the state directory; [`net`]: blocking HTTP exchanges;
//! - [`register`], [`listen`], [`send`]: the commands.
//!
//! Out of scope: TLS (an `https://` server or endpoint needs a TLS-terminating proxy), the
//! legacy `aesgcm` coding, more than one device per state directory.
// No function over 70 lines (clippy.toml) without a reason written beside it.
#![warn(clippy::too_many_lines)]
#![forbid(unsafe_code)]

pub mod cli;
pub mod ece;
pub mod keys;
pub mod listen;
pub mod net;
pub mod register;
pub mod send;
pub mod state;
pub mod vapid;

/// Why a command stopped; its message says what to do about it.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the command line or its inputs are wrong.
    Usage(String),
    /// Exit 1: the server, the network or the disk said no.
    Runtime(String),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    pub fn runtime(message: impl Into<String>) -> Failure {
        Failure::Runtime(message.into())
    }
}

//! The hand-written HTTP/1.1 layer: request heads and bodies in, responses out.
//!
//! It keeps only what openpush needs (no multipart, no compression, no upgrade) and puts a
//! limit on every size and wait, see [`crate::config::Limits`].

pub mod parse;
pub mod response;

pub use parse::{Request, read_request};
pub use response::Response;

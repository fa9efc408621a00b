//! The hand-written HTTP/1.1 layer: request heads and bodies in, responses out.
//!
//! It keeps only what openpush needs (no multipart, no compression, no upgrade) and puts a
//! limit on every size and wait, see [`crate::config::Limits`]. [`parse`] is pure (bytes
//! in, a head, a body or a refusal out, which the fuzz targets and property tests drive
//! directly); [`read`] does the socket I/O around it; [`response`] builds the answers and
//! [`write`](mod@write) sends them; [`chunked`] frames streamed bodies; [`url`] decodes what
//! a path carries.

pub mod chunked;
pub mod parse;
pub mod read;
pub mod response;
pub mod url;
pub mod write;

pub use parse::Request;
pub use read::read_request;
pub use response::Response;
pub use url::percent_decode;
pub use write::write_all;

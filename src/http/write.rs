//! Writing to a connection: the HTTP layer's socket I/O on the way out.

use std::net::TcpStream;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncWriteExt, future};

/// Writes all of `bytes` unless the peer stalls past `timeout`; false if the connection is lost.
pub async fn write_all(conn: &Async<TcpStream>, bytes: &[u8], timeout: Duration) -> bool {
    let write = async {
        let mut stream = conn;
        stream.write_all(bytes).await.is_ok()
    };
    let stall = async {
        Timer::after(timeout).await;
        false
    };
    future::or(write, stall).await
}

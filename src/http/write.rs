//! Writing to a connection: the HTTP layer's socket I/O on the way out.

use std::time::Duration;

use async_io::Timer;
use futures_lite::{AsyncWriteExt, future};

use crate::transport::Conn;

/// Writes all of `bytes` and flushes them unless the peer stalls past `timeout`; false if
/// the connection is lost.
pub async fn write_all(conn: &mut Conn, bytes: &[u8], timeout: Duration) -> bool {
    let write = async { conn.write_all(bytes).await.is_ok() && conn.flush().await.is_ok() };
    let stall = async {
        Timer::after(timeout).await;
        false
    };
    future::or(write, stall).await
}

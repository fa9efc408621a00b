//! A client connection as the HTTP layer, streams and WebSocket doors see it: plain TCP,
//! or TLS over it (feature `tls`). Both read and write as one async byte stream.
//!
//! Invariant: bytes written are on the socket only once a flush returns ready (a plain
//! socket has nothing to flush; a TLS one may hold the last record), so what counts a
//! message as sent flushes first.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

#[cfg(feature = "tls")]
use crate::tls::TlsStream;

/// A client's connection, whichever listener took it.
pub enum Conn {
    /// From a `listen` address.
    Plain(Async<TcpStream>),
    /// From a `listen_tls` address (boxed: a plain stream stays small).
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Conn {
    /// The socket under the connection.
    pub fn socket(&self) -> &Async<TcpStream> {
        match self {
            Conn::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => tls.socket(),
        }
    }

    /// Whether the connection came over TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Conn::Plain(_))
    }

    /// Whether the client has closed its side (or reset it), without waiting and without
    /// taking any data it sent.
    pub fn peer_closed(&mut self) -> bool {
        match self {
            Conn::Plain(tcp) => match tcp.get_ref().peek(&mut [0u8; 1]) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ),
            },
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => tls.peer_closed(),
        }
    }

    /// Ends our side of the connection: TLS's `close_notify` (if the socket takes it now),
    /// then the socket's.
    pub fn shutdown_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Conn::Tls(tls) = self {
            tls.close_notify_now();
        }
        let _ = self.socket().get_ref().shutdown(Shutdown::Write);
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(&mut &*tcp).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Pin::new(&mut &*tcp).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(_) => Poll::Ready(Ok(())),
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => tls.poll_flush(cx),
        }
    }

    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(tcp) => Poll::Ready(tcp.get_ref().shutdown(Shutdown::Write)),
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => Pin::new(&mut **tls).poll_close(cx),
        }
    }
}

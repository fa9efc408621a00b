//! One server-side TLS connection over a non-blocking socket, driven through rustls'
//! unbuffered API so that an idle connection holds no buffer at all: only the session's
//! keys and state.
//!
//! Invariants:
//! - `incoming` holds ciphertext that rustls has not consumed yet; it is released as soon as
//!   it is empty, and never grows past `MAX_INCOMING` (one record and one read, or a
//!   handshake message split over records).
//! - `outgoing[sent..]` is ciphertext not yet on the socket. Nothing more is encrypted,
//!   decrypted or read while some is left, so records leave in the order rustls made them;
//!   it is released once all of it is sent.
//! - `plain[taken..]` is application data decrypted and not yet read by the caller.
//! - A write returns once its bytes are encrypted; they are on the socket only after
//!   [`TlsStream::poll_flush`] returns ready.

use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use rustls::server::{ServerConfig, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, ReadTraffic, UnbufferedStatus,
    WriteTraffic,
};

/// Ciphertext asked of the socket per read.
const READ_CHUNK: usize = 4096;
/// The most ciphertext held before rustls consumes it: a handshake message of at most
/// 64 KiB spread over records, plus one read.
const MAX_INCOMING: usize = 64 * 1024 + 2 * READ_CHUNK;
/// Plaintext encrypted per write: one full record.
const MAX_PLAINTEXT_PER_WRITE: usize = 16 * 1024;

/// What a turn of [`TlsStream::drive`] is for.
#[derive(Clone, Copy)]
enum Want<'a> {
    /// Decrypted data, or the end of the peer's data.
    Read,
    /// These bytes encrypted (up to a record of them).
    Write(&'a [u8]),
    /// The `close_notify` alert queued.
    CloseNotify,
}

/// What one processing step leaves to do.
enum Step {
    Again,
    NeedInput,
    Wrote(usize),
    Closed,
}

/// A TLS session over a client's socket, read and written as an async byte stream.
pub struct TlsStream {
    tcp: Async<TcpStream>,
    tls: UnbufferedServerConnection,
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
    sent: usize,
    plain: Vec<u8>,
    taken: usize,
    /// The peer sent `close_notify`, or closed the socket: it sends no more data.
    peer_done: bool,
    /// Our `close_notify` is queued: nothing more is written.
    closing: bool,
}

impl TlsStream {
    /// A connection whose handshake runs as it is first read or written.
    pub fn new(tcp: Async<TcpStream>, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let tls = UnbufferedServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream {
            tcp,
            tls,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            plain: Vec::new(),
            taken: 0,
            peer_done: false,
            closing: false,
        })
    }

    /// The socket under the session.
    pub fn socket(&self) -> &Async<TcpStream> {
        &self.tcp
    }

    /// Whether the peer has ended its side (`close_notify`, a closed socket or a TLS
    /// error), taking in what has arrived without waiting and without registering for
    /// wake-ups: records that come with it are kept for the next read.
    pub fn peer_closed(&mut self) -> bool {
        match self.drive(None, Want::Read) {
            Poll::Ready(Ok(_)) => self.peer_done && self.taken == self.plain.len(),
            Poll::Ready(Err(_)) => true,
            Poll::Pending => false,
        }
    }

    /// Sends what is encrypted and not yet on the socket.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush(Some(cx))
    }

    /// Queues `close_notify` and sends it if the socket takes it now, without waiting.
    pub fn close_notify_now(&mut self) {
        if !self.closing && matches!(self.drive(None, Want::CloseNotify), Poll::Ready(Ok(_))) {
            self.closing = true;
        }
        let _ = self.flush(None);
    }

    /// Queues `close_notify` and sends it.
    pub fn poll_close_notify(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closing {
            ready!(self.drive(Some(cx), Want::CloseNotify))?;
            self.closing = true;
        }
        self.flush(Some(cx))
    }

    /// Runs the connection until it has what `want` asks for. With `cx`, waits as a poll
    /// does; without, takes only what the socket has now (`Pending` once it has no more).
    fn drive(
        &mut self,
        mut cx: Option<&mut Context<'_>>,
        want: Want<'_>,
    ) -> Poll<io::Result<usize>> {
        loop {
            if matches!(want, Want::Read) && (self.taken < self.plain.len() || self.peer_done) {
                return Poll::Ready(Ok(0));
            }
            ready!(self.flush(cx.as_deref_mut()))?;
            let UnbufferedStatus { discard, state } =
                self.tls.process_tls_records(&mut self.incoming);
            let step = match state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    if self.taken == self.plain.len() {
                        self.plain.clear();
                        self.taken = 0;
                    }
                    decrypt(&mut traffic, &mut self.plain).map(|()| Step::Again)
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode(&mut data, &mut self.outgoing).map(|()| Step::Again)
                }
                // Encoded records are sent at the top of the next turn, before anything else.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    Ok(Step::Again)
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(Step::NeedInput),
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_done = true;
                    Ok(Step::Again)
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_done = true;
                    Ok(Step::Closed)
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    write(&mut traffic, want, &mut self.outgoing)
                }
                // Early data is never accepted (rustls' default), so no other state comes.
                Ok(_) => Err(rustls::Error::General("unexpected TLS state".into())),
            };
            self.incoming.drain(..discard);
            if self.incoming.is_empty() {
                self.incoming = Vec::new();
            }
            match step {
                Err(e) => return Poll::Ready(Err(self.fail(e))),
                Ok(Step::Again) => {}
                Ok(Step::NeedInput) => {
                    if ready!(self.fill(cx.as_deref_mut()))? == 0 {
                        self.peer_done = true;
                        if !matches!(want, Want::Read) {
                            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                        }
                    }
                }
                Ok(Step::Wrote(n)) => {
                    // Sent now if the socket takes it; otherwise by the next write or flush.
                    if let Poll::Ready(Err(e)) = self.flush(cx) {
                        return Poll::Ready(Err(e));
                    }
                    return Poll::Ready(Ok(n));
                }
                Ok(Step::Closed) => {
                    return Poll::Ready(match want {
                        Want::Read => Ok(0),
                        _ => Err(io::ErrorKind::BrokenPipe.into()),
                    });
                }
            }
        }
    }

    /// Reads ciphertext into `incoming`; `Ok(0)` when the peer has closed the socket.
    fn fill(&mut self, cx: Option<&mut Context<'_>>) -> Poll<io::Result<usize>> {
        if self.incoming.len() >= MAX_INCOMING {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS record too large",
            )));
        }
        let start = self.incoming.len();
        self.incoming.resize(start + READ_CHUNK, 0);
        let read = match cx {
            Some(cx) => Pin::new(&mut &self.tcp).poll_read(cx, &mut self.incoming[start..]),
            None => now(io::Read::read(
                &mut self.tcp.get_ref(),
                &mut self.incoming[start..],
            )),
        };
        let n = match &read {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        self.incoming.truncate(start + n);
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        read
    }

    /// Writes `outgoing` to the socket, then releases it.
    fn flush(&mut self, mut cx: Option<&mut Context<'_>>) -> Poll<io::Result<()>> {
        while self.sent < self.outgoing.len() {
            let rest = &self.outgoing[self.sent..];
            let written = match cx.as_deref_mut() {
                Some(cx) => Pin::new(&mut &self.tcp).poll_write(cx, rest),
                None => now(io::Write::write(&mut self.tcp.get_ref(), rest)),
            };
            match ready!(written) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if self.sent > 0 || self.outgoing.capacity() > 0 {
            self.outgoing = Vec::new();
            self.sent = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Logs a TLS error, sends the alert rustls made for it if the socket takes it now,
    /// and turns it into the connection's I/O error.
    fn fail(&mut self, error: rustls::Error) -> io::Error {
        log::debug!("TLS: {error}");
        let UnbufferedStatus { state, .. } = self.tls.process_tls_records(&mut []);
        if let Ok(ConnectionState::EncodeTlsData(mut alert)) = state
            && encode(&mut alert, &mut self.outgoing).is_ok()
        {
            let _ = self.flush(None);
        }
        self.peer_done = true;
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

/// A non-blocking call's result as a poll: `WouldBlock` is `Pending`.
fn now<T>(result: io::Result<T>) -> Poll<io::Result<T>> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

/// Appends the application data of the records that came to `plain`.
fn decrypt<D>(
    traffic: &mut ReadTraffic<'_, '_, D>,
    plain: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    while let Some(record) = traffic.next_record() {
        plain.extend_from_slice(record?.payload);
    }
    Ok(())
}

/// Encrypts what `want` asks to write into `out`, once the handshake allows it.
fn write<D>(
    traffic: &mut WriteTraffic<'_, D>,
    want: Want<'_>,
    out: &mut Vec<u8>,
) -> Result<Step, rustls::Error> {
    match want {
        Want::Read => Ok(Step::NeedInput),
        Want::Write(data) => {
            let n = data.len().min(MAX_PLAINTEXT_PER_WRITE);
            encrypt(traffic, out, |t, out| t.encrypt(&data[..n], out)).map(|()| Step::Wrote(n))
        }
        Want::CloseNotify => {
            encrypt(traffic, out, |t, out| t.queue_close_notify(out)).map(|()| Step::Wrote(0))
        }
    }
}

/// Appends a handshake record to `out`.
fn encode(
    data: &mut EncodeTlsData<'_, rustls::server::ServerConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    append(
        out,
        1024,
        |buf| data.encode(buf),
        |e| match e {
            EncodeError::InsufficientSize(size) => Some(size.required_size),
            _ => None,
        },
    )
}

/// Appends what `seal` encrypts to `out`.
fn encrypt<D>(
    traffic: &mut WriteTraffic<'_, D>,
    out: &mut Vec<u8>,
    mut seal: impl FnMut(&mut WriteTraffic<'_, D>, &mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), rustls::Error> {
    // A record's header, content type and tag, with room to spare.
    let room = MAX_PLAINTEXT_PER_WRITE + 64;
    append(
        out,
        room,
        |buf| seal(traffic, buf),
        |e| match e {
            EncryptError::InsufficientSize(size) => Some(size.required_size),
            _ => None,
        },
    )
}

/// Appends what `write` puts in a buffer of `room` bytes to `out`, in a larger one if it
/// says how many bytes it needs (`needs`); other errors leave `out` as it was.
fn append<E: std::fmt::Display>(
    out: &mut Vec<u8>,
    mut room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needs: impl Fn(&E) -> Option<usize>,
) -> Result<(), rustls::Error> {
    let start = out.len();
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => match needs(&e) {
                Some(more) if more > room => room = more,
                _ => {
                    out.truncate(start);
                    return Err(rustls::Error::General(e.to_string()));
                }
            },
        }
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drive(Some(cx), Want::Read))?;
        let available = &this.plain[this.taken..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        this.taken += n;
        if this.taken == this.plain.len() {
            this.plain = Vec::new();
            this.taken = 0;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.closing {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        self.get_mut().drive(Some(cx), Want::Write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().flush(Some(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_close_notify(cx))?;
        this.tcp.get_ref().shutdown(std::net::Shutdown::Write)?;
        Poll::Ready(Ok(()))
    }
}

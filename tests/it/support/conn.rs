//! One raw keep-alive connection that reads whole responses (a `1xx` one on its own) as
//! they come: for pipelining, `100 Continue`, timeouts and keep-alive, where
//! [`send_raw`](super::send_raw)'s one request per connection cannot show the edge.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::TIMEOUT;
use super::http::{Response, closed_within, read_more, response_at};

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).unwrap();
    }

    /// Reads until one complete response is buffered, then takes it.
    pub fn response(&mut self) -> Response {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some((response, len)) = response_at(&self.buf) {
                self.buf.drain(..len);
                return response;
            }
            assert!(
                self.fill(deadline),
                "no complete response; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Reads more bytes; false at the deadline or once the server closed.
    fn fill(&mut self, deadline: Instant) -> bool {
        read_more(&mut self.stream, &mut self.buf, deadline)
    }

    /// True once the server has closed the connection (within `TIMEOUT`).
    pub fn closed(&mut self) -> bool {
        closed_within(&mut self.stream, &mut self.buf, TIMEOUT)
    }
}

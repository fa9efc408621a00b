//! One raw keep-alive connection that reads whole responses (Content-Length framed) as
//! they come: for pipelining, `100 Continue`, timeouts and keep-alive, where
//! [`send_raw`](super::send_raw)'s one request per connection cannot show the edge.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{Response, TIMEOUT, parse_response, read_more};

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
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if self.buf.len() >= end + 4 + len {
                    let bytes: Vec<u8> = self.buf.drain(..end + 4 + len).collect();
                    return parse_response(&bytes).unwrap();
                }
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
        let deadline = Instant::now() + TIMEOUT;
        while self.fill(deadline) {}
        Instant::now() < deadline
    }
}

//! A blocking WebSocket client (RFC 6455) for the integration tests, written apart from
//! the server's `ws` module so that each checks the other: it computes the accept value
//! itself, masks every frame it sends, and asserts that each server frame is unmasked,
//! final and without reserved bits.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use openpush_wire::base64;

use super::TIMEOUT;
use super::http::{Opened, open_get, read_body, read_more};

pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

const FIN: u8 = 0x80;

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

pub struct WsClient {
    pub conn: TcpStream,
    buf: Vec<u8>,
}

impl WsClient {
    /// Opens `path` with the upgrade headers and `headers`; the status line and body of
    /// any answer but a valid `101`.
    pub fn connect(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<WsClient, String> {
        let key = base64::encode(&random::<16>());
        let host = addr.to_string();
        let mut all = vec![
            ("Host", host.as_str()),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key.as_str()),
            ("Sec-WebSocket-Version", "13"),
        ];
        all.extend_from_slice(headers);
        let Opened {
            mut conn,
            head: response,
            head_text: head,
            rest: mut buf,
        } = open_get(addr, path, &all, Duration::from_millis(20))
            .map_err(|what| format!("no response head: {what}"))?;
        if response.status != 101 {
            let status_line = head.lines().next().unwrap_or_default();
            let framing = response.framing().map_err(|e| format!("{e}:\n{head}"))?;
            let body = read_body(&mut conn, &mut buf, framing, Instant::now() + TIMEOUT);
            return Err(format!("{status_line}\n{}", String::from_utf8_lossy(&body)));
        }
        let has_token = |name: &str, token: &str| {
            response
                .header(name)
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
            return Err(format!("101 without the upgrade headers:\n{head}"));
        }
        if response.header("sec-websocket-accept") != Some(expected_accept(&key).as_str()) {
            return Err(format!("wrong Sec-WebSocket-Accept for key {key}:\n{head}"));
        }
        Ok(WsClient { conn, buf })
    }

    /// Sends one masked frame; `first_byte` is FIN, the reserved bits and the opcode.
    pub fn send_frame(&mut self, first_byte: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = vec![first_byte];
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let mask = random::<4>();
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        self.conn.write_all(&frame)
    }

    pub fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.send_frame(FIN | TEXT, text.as_bytes())
    }

    pub fn send_ping(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.send_frame(FIN | PING, payload)
    }

    pub fn send_close(&mut self, code: u16) -> std::io::Result<()> {
        self.send_frame(FIN | CLOSE, &code.to_be_bytes())
    }

    /// The next frame, or None at the deadline or once the server closed.
    pub fn next_frame_within(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((frame, len)) = parse_server_frame(&self.buf) {
                self.buf.drain(..len);
                return Some(frame);
            }
            if !read_more(&mut self.conn, &mut self.buf, deadline) {
                return None;
            }
        }
    }

    /// The next text message, answering pings and skipping pongs on the way; None at the
    /// deadline, once the server closed, or at a frame of another kind (a close).
    pub fn text_within(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let frame =
                self.next_frame_within(deadline.saturating_duration_since(Instant::now()))?;
            match frame.opcode {
                PING => {
                    let _ = self.send_frame(FIN | PONG, &frame.payload);
                }
                PONG => {}
                TEXT => return Some(String::from_utf8(frame.payload).expect("text is UTF-8")),
                _ => return None,
            }
        }
    }
}

/// A complete frame at the start of `buf` and its length on the wire.
fn parse_server_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let [first, second, ..] = *buf else {
        return None;
    };
    assert_eq!(
        first & 0xF0,
        FIN,
        "server frame not final or with reserved bits"
    );
    assert_eq!(second & 0x80, 0, "server frame masked");
    let (payload_len, header_len) = match second & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().unwrap()) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        len => (len as usize, 2),
    };
    let payload = buf.get(header_len..header_len + payload_len)?;
    let frame = Frame {
        opcode: first & 0x0F,
        payload: payload.to_vec(),
    };
    Some((frame, header_len + payload_len))
}

fn expected_accept(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::encode(&sha1.digest().bytes())
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

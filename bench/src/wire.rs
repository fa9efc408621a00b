//! Blocking HTTP/1.1 and MQTT 3.1.1 client pieces, and RFC 6455 frames: just what the bench
//! sends and reads.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// The loopback source address for connection `i`: 127.0.1.1 .. 127.0.1.250 round robin, so
/// that each source address has its own 28k ephemeral ports and N can pass 64k.
pub fn source_addr(i: usize) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(127, 0, 1, 1 + (i % 250) as u8),
        0,
    ))
}

/// Refuses any destination outside 127.0.0.0/8: this tool only ever loads local servers.
pub fn check_loopback(addr: &SocketAddr) {
    assert!(
        matches!(addr, SocketAddr::V4(a) if a.ip().octets()[0] == 127),
        "only 127.0.0.0/8 destinations are allowed, not {addr}"
    );
}

/// A socket bound to `source_addr(i)`, connected (blocking or not) to `dest`.
pub fn connect_from(i: usize, dest: SocketAddr, nonblocking: bool) -> io::Result<TcpStream> {
    check_loopback(&dest);
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&source_addr(i).into())?;
    s.set_nodelay(true)?;
    if nonblocking {
        s.set_nonblocking(true)?;
        match s.connect(&dest.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
    } else {
        s.connect_timeout(&dest.into(), Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_write_timeout(Some(Duration::from_secs(30)))?;
    }
    Ok(s.into())
}

pub struct HttpConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl HttpConn {
    pub fn new(stream: TcpStream) -> Self {
        HttpConn {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut tmp = [0u8; 8192];
        let n = self.stream.read(&mut tmp)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed",
            ));
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    /// Sends one request (keep-alive) and reads its whole response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes)?;
        self.read_response()
    }

    fn read_response(&mut self) -> io::Result<HttpResponse> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let header = |name: &str| {
            head.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l[name.len()..].trim().to_owned())
        };
        self.buf.drain(..head_end);
        let body =
            if let Some(len) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
                while self.buf.len() < len {
                    self.fill()?;
                }
                self.buf.drain(..len).collect()
            } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
                let mut body = Vec::new();
                loop {
                    let line_end = loop {
                        if let Some(i) = find(&self.buf, b"\r\n") {
                            break i;
                        }
                        self.fill()?;
                    };
                    let size_text = String::from_utf8_lossy(&self.buf[..line_end]).to_string();
                    let size =
                        usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                            .map_err(|_| {
                                io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                            })?;
                    while self.buf.len() < line_end + 2 + size + 2 {
                        self.fill()?;
                    }
                    body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                    self.buf.drain(..line_end + 2 + size + 2);
                    if size == 0 {
                        break body;
                    }
                }
            } else if status == 204 || status == 304 {
                Vec::new()
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response without length",
                ));
            };
        Ok(HttpResponse { status, body })
    }
}

/// Extracts `"field":"value"` from a flat JSON object (the bench's own simple replies).
pub fn json_str(body: &[u8], field: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let pat = format!("\"{field}\":");
    let at = text.find(&pat)? + pat.len();
    let rest = text[at..].trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// Extracts `"field":<unsigned number>`.
pub fn json_u64(text: &[u8], field: &[u8]) -> Option<u64> {
    let mut pat = Vec::with_capacity(field.len() + 3);
    pat.push(b'"');
    pat.extend_from_slice(field);
    pat.extend_from_slice(b"\":");
    let at = find(text, &pat)? + pat.len();
    let mut n: u64 = 0;
    let mut any = false;
    for &b in &text[at..] {
        if b.is_ascii_digit() {
            n = n * 10 + (b - b'0') as u64;
            any = true;
        } else if b != b' ' || any {
            break;
        }
    }
    any.then_some(n)
}

pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); None at a character outside the alphabet.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in text.trim_end_matches('=').as_bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = ((acc << 6) | v as u32) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

// ---- MQTT 3.1.1 ----

fn push_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 128;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
}

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(kind: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = vec![kind];
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// CONNECT with a clean session and no keepalive timer (the bench's connections are idle
/// on purpose; the server must not drop them).
pub fn mqtt_connect(client_id: &str) -> Vec<u8> {
    let mut b = Vec::new();
    push_str(&mut b, b"MQTT");
    b.push(4);
    b.push(0x02);
    b.extend_from_slice(&0u16.to_be_bytes());
    push_str(&mut b, client_id.as_bytes());
    packet(0x10, b)
}

pub fn mqtt_subscribe(packet_id: u16, topic: &str) -> Vec<u8> {
    let mut b = packet_id.to_be_bytes().to_vec();
    push_str(&mut b, topic.as_bytes());
    b.push(0);
    packet(0x82, b)
}

/// PUBLISH at QoS 1, so the poster gets a PUBACK to wait for, like an HTTP response.
pub fn mqtt_publish_qos1(packet_id: u16, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    push_str(&mut b, topic.as_bytes());
    b.extend_from_slice(&packet_id.to_be_bytes());
    b.extend_from_slice(payload);
    packet(0x32, b)
}

/// Splits one complete packet off the front of `buf`: (first byte, body), bytes used.
pub fn mqtt_take(buf: &[u8]) -> Option<((u8, &[u8]), usize)> {
    let mut len = 0usize;
    let mut mult = 1usize;
    let mut i = 1;
    loop {
        let b = *buf.get(i)?;
        len += (b & 127) as usize * mult;
        mult *= 128;
        i += 1;
        if b & 128 == 0 || i > 4 {
            break;
        }
    }
    let end = i + len;
    if buf.len() < end {
        return None;
    }
    Some(((buf[0], &buf[i..end]), end))
}

/// Reads one whole MQTT packet from a blocking stream.
pub fn mqtt_read(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u8, Vec<u8>)> {
    loop {
        if let Some(((kind, body), used)) = mqtt_take(buf) {
            let out = (kind, body.to_vec());
            buf.drain(..used);
            return Ok(out);
        }
        let mut tmp = [0u8; 4096];
        let n = stream.read(&mut tmp)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "broker closed",
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

// ---- WebSocket (RFC 6455) ----

/// One client frame with FIN set, masked (§5.3) with a fixed key: the bench needs no
/// randomness, the server only unmasks.
pub fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// Splits one complete server frame (unmasked) off the front of `buf`: (first byte,
/// payload), bytes used.
pub fn ws_take(buf: &[u8]) -> Option<((u8, &[u8]), usize)> {
    let (len, at): (usize, usize) = match *buf.get(1)? & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let end = at.checked_add(len)?;
    Some(((buf[0], buf.get(at..end)?), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"u:p"), "dTpw");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn base64_round_trips() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for n in [0, 1, 2, 3, 200, 256] {
            assert_eq!(
                base64_decode(&base64(&bytes[..n])).as_deref(),
                Some(&bytes[..n])
            );
        }
        assert_eq!(base64_decode("a*b"), None);
    }

    #[test]
    fn mqtt_lengths_round_trip() {
        let p = mqtt_publish_qos1(7, "b/1", &[b'x'; 300]);
        let ((kind, body), used) = mqtt_take(&p).unwrap();
        assert_eq!((kind, used), (0x32, p.len()));
        assert_eq!(body.len(), 2 + 3 + 2 + 300);
    }

    #[test]
    fn ws_frames() {
        let f = ws_frame(0x1, b"hi");
        assert_eq!(&f[..2], &[0x81, 0x82]);
        let unmasked: Vec<u8> = f[6..]
            .iter()
            .zip(f[2..6].iter())
            .map(|(b, m)| b ^ m)
            .collect();
        assert_eq!(unmasked, b"hi");
        assert_eq!(ws_frame(0xA, &[0; 300])[1], 0x80 | 126);
        let mut server = vec![0x89, 2, b'p', b'q', 0x81, 126, 0, 200];
        server.extend_from_slice(&[b'x'; 200]);
        let ((kind, body), used) = ws_take(&server).unwrap();
        assert_eq!((kind, body, used), (0x89, &b"pq"[..], 4));
        let ((kind, body), used) = ws_take(&server[4..]).unwrap();
        assert_eq!((kind, body.len(), used), (0x81, 200, 204));
        assert!(ws_take(&server[4..100]).is_none());
    }

    #[test]
    fn json_fields() {
        assert_eq!(json_u64(br#"{"run":3,"seq": 12,"t":5}"#, b"seq"), Some(12));
        assert_eq!(
            json_str(br#"{"token":"abc","x":1}"#, "token").as_deref(),
            Some("abc")
        );
    }
}

/// Chunked transfer decoding of a response body that arrives in pieces.
#[derive(Default)]
pub struct Dechunk {
    chunk_left: usize,
    skip_crlf: usize,
}

impl Dechunk {
    /// Moves the payload bytes at the front of `raw` to `text`; false once the last (empty)
    /// chunk has been seen.
    pub fn feed(&mut self, raw: &mut Vec<u8>, text: &mut Vec<u8>) -> bool {
        let mut at = 0;
        let mut more = true;
        loop {
            if self.chunk_left > 0 {
                let take = self.chunk_left.min(raw.len() - at);
                if take == 0 {
                    break;
                }
                text.extend_from_slice(&raw[at..at + take]);
                at += take;
                self.chunk_left -= take;
                if self.chunk_left == 0 {
                    self.skip_crlf = 2;
                }
            } else if self.skip_crlf > 0 {
                if at == raw.len() {
                    break;
                }
                at += 1;
                self.skip_crlf -= 1;
            } else {
                let Some(nl) = raw[at..].windows(2).position(|w| w == b"\r\n") else {
                    break;
                };
                let line = String::from_utf8_lossy(&raw[at..at + nl]).to_string();
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .unwrap_or(0);
                at += nl + 2;
                if size == 0 {
                    more = false;
                    break;
                }
                self.chunk_left = size;
            }
        }
        raw.drain(..at);
        more
    }
}

#[cfg(test)]
mod dechunk_tests {
    use super::Dechunk;

    #[test]
    fn dechunk_across_splits_and_the_last_chunk() {
        let wire = b"5;x=1\r\nhello\r\n3\r\n, w\r\n0\r\n\r\n";
        for cut in 0..wire.len() {
            let (mut d, mut raw, mut text) = (Dechunk::default(), wire[..cut].to_vec(), Vec::new());
            let mut more = d.feed(&mut raw, &mut text);
            raw.extend_from_slice(&wire[cut..]);
            if more {
                more = d.feed(&mut raw, &mut text);
            }
            assert!(!more, "cut {cut}");
            assert_eq!(text, b"hello, w", "cut {cut}");
        }
    }
}

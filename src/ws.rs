//! RFC 6455 WebSocket for the server side of a stream, without I/O: the opening
//! handshake's checks and answer, frame encoders for what the server sends, and a
//! streaming decoder for what a client sends.
//!
//! What the server sends is always a single unmasked frame with FIN set: text, ping,
//! pong or close. Control payloads are cut to 125 bytes, a close reason to 123 bytes at a
//! character boundary, so every encoder writes a valid frame whatever it is given.
//!
//! [`FrameReader`] takes client bytes in chunks split anywhere and reports each complete
//! frame once. Client data frames (text, binary, continuation) are checked and counted,
//! and their payload is skipped unread: nothing is buffered for them, and text is not
//! checked as UTF-8. A reader made with [`FrameReader::with_text`] instead unmasks text
//! messages (fragmented or not, up to its limit in all) and reports each whole one as
//! [`Incoming::Text`]; it holds heap memory only while a text message arrives. Control payloads are unmasked into an inline 125-byte array; a
//! pong's is dropped. A protocol error (see [`Incoming::Error`]) or a close frame is the
//! last event: the reader ignores every byte after it, and the caller answers with a
//! close frame (1002 after an error) and ends the stream.
//!
//! `size_of::<FrameReader>()` is its 125-byte control payload, its text buffer's handle and
//! a few counters (184 bytes on x86_64), and it holds no heap memory but a text message's
//! bytes while one arrives. Between messages it holds nothing either
//! ([`FrameReader::is_idle`]), so a stream need keep one only while a frame arrives.
//!
//! The handshake checks are those of RFC 6455 §4.2.1 on the headers alone; method,
//! HTTP version, `Host`, `Origin` and authentication are the caller's. A request whose
//! only fault is its version should get `426 Upgrade Required` with
//! `Sec-WebSocket-Version: 13` (§4.4): [`check_upgrade`] then fails with
//! [`UNSUPPORTED_VERSION`].

use base64ct::{Base64, Encoding};

const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const KEY_NONCE_LEN: usize = 16;
const MAX_CONTROL_PAYLOAD: usize = 125;
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;

const FIN: u8 = 0x80;
const RESERVED_BITS: u8 = 0x70;
const OPCODE_BITS: u8 = 0x0F;
const MASKED: u8 = 0x80;
const LENGTH_BITS: u8 = 0x7F;
const LENGTH_16: u8 = 126;
const LENGTH_64: u8 = 127;

/// Why an upgrade with another `Sec-WebSocket-Version` is refused.
pub const UNSUPPORTED_VERSION: &str = "Sec-WebSocket-Version is not 13";

/// A request that is no WebSocket upgrade, and why.
#[derive(Debug)]
pub struct NotAnUpgrade(pub &'static str);

/// Checks a request for a WebSocket upgrade; its `Sec-WebSocket-Accept` value.
pub fn accept_request(req: &crate::http::Request) -> Result<String, NotAnUpgrade> {
    check_upgrade(
        req.header("connection"),
        req.header("upgrade"),
        req.header("sec-websocket-version"),
        req.header("sec-websocket-key"),
    )
    .map_err(NotAnUpgrade)
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(client_key.as_bytes());
    sha1.update(ACCEPT_GUID.as_bytes());
    Base64::encode_string(&sha1.digest().bytes())
}

/// Checks an upgrade request's headers; the `Sec-WebSocket-Accept` value, or why not.
pub fn check_upgrade(
    connection: Option<&str>,
    upgrade: Option<&str>,
    version: Option<&str>,
    key: Option<&str>,
) -> Result<String, &'static str> {
    if !has_token(upgrade, "websocket") {
        return Err("Upgrade does not name websocket");
    }
    if !has_token(connection, "upgrade") {
        return Err("Connection does not name upgrade");
    }
    if version.map(str::trim) != Some("13") {
        return Err(UNSUPPORTED_VERSION);
    }
    let key = key.map(str::trim).unwrap_or_default();
    let mut nonce = [0u8; KEY_NONCE_LEN];
    match Base64::decode(key, &mut nonce) {
        Ok(decoded) if decoded.len() == KEY_NONCE_LEN => Ok(accept_key(key)),
        _ => Err("Sec-WebSocket-Key is not 16 bytes in base64"),
    }
}

fn has_token(header: Option<&str>, token: &str) -> bool {
    header.is_some_and(|value| {
        value
            .split(',')
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    })
}

/// The `101 Switching Protocols` response head, blank line included.
pub fn response_head(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Appends a text frame (unmasked, as a server sends it) carrying `text`.
pub fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    push_frame(out, OPCODE_TEXT, text);
}

/// A ping; a payload over 125 bytes is cut to 125.
pub fn push_ping(out: &mut Vec<u8>, payload: &[u8]) {
    push_frame(out, OPCODE_PING, control_payload(payload));
}

/// A pong; a payload over 125 bytes is cut to 125.
pub fn push_pong(out: &mut Vec<u8>, payload: &[u8]) {
    push_frame(out, OPCODE_PONG, control_payload(payload));
}

/// A close frame with `code` and as much of `reason` as fits, cut at a character boundary.
pub fn push_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    push_frame(out, OPCODE_CLOSE, &payload[..2 + end]);
}

fn control_payload(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)]
}

fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(FIN | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xFFFF => {
            out.push(LENGTH_16);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(LENGTH_64);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// One complete client frame, or why the stream must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The unmasked payload, at most 125 bytes; to be answered with a pong carrying it.
    Ping(&'a [u8]),
    /// A pong: nothing to answer.
    Pong,
    /// The status code, if the frame had one; the reason is dropped.
    Close(Option<u16>),
    /// A text, binary or continuation frame of this many payload bytes, skipped unread.
    Data(u64),
    /// A whole text message, unmasked (readers made with [`FrameReader::with_text`]).
    Text(&'a [u8]),
    /// A protocol violation: an unmasked frame, reserved bits or opcodes, a control
    /// frame over 125 bytes or fragmented, a data frame over the reader's limit, a
    /// continuation outside a fragmented message or a new message inside one, or a
    /// malformed close payload.
    Error(&'static str),
}

/// A streaming decoder of client → server frames; see the module doc.
#[derive(Debug, Clone)]
pub struct FrameReader {
    max_data_frame: u64,
    payload_len: u64,
    payload_received: u64,
    mask: [u8; 4],
    control_payload: [u8; MAX_CONTROL_PAYLOAD],
    first_byte: u8,
    stage: Stage,
    in_fragmented_message: bool,
    /// Text messages are unmasked into `text` and reported whole.
    keeps_text: bool,
    /// The data message being received is text.
    in_text_message: bool,
    text: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    FirstByte,
    SecondByte,
    ExtendedLength { bytes_left: u8 },
    MaskKey { bytes_left: u8 },
    Payload,
    Ended,
}

impl FrameReader {
    /// A reader that fails on any data frame whose payload is over `max_data_frame` bytes.
    pub fn new(max_data_frame: u64) -> FrameReader {
        FrameReader {
            max_data_frame,
            payload_len: 0,
            payload_received: 0,
            mask: [0; 4],
            control_payload: [0; MAX_CONTROL_PAYLOAD],
            first_byte: 0,
            stage: Stage::FirstByte,
            in_fragmented_message: false,
            keeps_text: false,
            in_text_message: false,
            text: Vec::new(),
        }
    }

    /// A reader that reports text messages of at most `max_message` bytes in all as
    /// [`Incoming::Text`] (and fails on longer ones, and on data frames over that size).
    pub fn with_text(max_message: u64) -> FrameReader {
        FrameReader {
            keeps_text: true,
            ..FrameReader::new(max_message)
        }
    }

    /// True when it holds neither part of a frame nor of a fragmented message, so that a
    /// fresh reader would go on alike; false once ended.
    pub fn is_idle(&self) -> bool {
        self.stage == Stage::FirstByte && !self.in_fragmented_message
    }

    /// True after a close frame or an error: later bytes are ignored.
    pub fn has_ended(&self) -> bool {
        self.stage == Stage::Ended
    }

    /// Decodes `bytes`, calling `on_frame` for each frame they complete, in order.
    pub fn feed(&mut self, mut bytes: &[u8], on_frame: &mut impl FnMut(Incoming)) {
        while let Some((&byte, rest)) = bytes.split_first() {
            match self.stage {
                Stage::Ended => return,
                Stage::Payload => bytes = self.take_payload(bytes, on_frame),
                _ => {
                    bytes = rest;
                    if let Err(why) = self.take_header_byte(byte, on_frame) {
                        self.stage = Stage::Ended;
                        on_frame(Incoming::Error(why));
                    }
                }
            }
        }
    }

    fn opcode(&self) -> u8 {
        self.first_byte & OPCODE_BITS
    }

    fn is_control(&self) -> bool {
        self.opcode() >= OPCODE_CLOSE
    }

    fn take_header_byte(
        &mut self,
        byte: u8,
        on_frame: &mut impl FnMut(Incoming),
    ) -> Result<(), &'static str> {
        match self.stage {
            Stage::FirstByte => {
                self.first_byte = byte;
                self.check_first_byte()?;
                self.stage = Stage::SecondByte;
            }
            Stage::SecondByte => {
                if byte & MASKED == 0 {
                    return Err("unmasked client frame");
                }
                self.payload_len = 0;
                match byte & LENGTH_BITS {
                    LENGTH_16 => self.stage = Stage::ExtendedLength { bytes_left: 2 },
                    LENGTH_64 => self.stage = Stage::ExtendedLength { bytes_left: 8 },
                    len => {
                        self.payload_len = u64::from(len);
                        self.check_length()?;
                    }
                }
            }
            Stage::ExtendedLength { bytes_left } => {
                self.payload_len = self.payload_len << 8 | u64::from(byte);
                if bytes_left > 1 {
                    self.stage = Stage::ExtendedLength {
                        bytes_left: bytes_left - 1,
                    };
                } else {
                    self.check_length()?;
                }
            }
            Stage::MaskKey { bytes_left } => {
                self.mask[self.mask.len() - usize::from(bytes_left)] = byte;
                if bytes_left > 1 {
                    self.stage = Stage::MaskKey {
                        bytes_left: bytes_left - 1,
                    };
                } else {
                    self.payload_received = 0;
                    self.stage = Stage::Payload;
                    if self.payload_len == 0 {
                        self.finish_frame(on_frame);
                    }
                }
            }
            Stage::Payload | Stage::Ended => unreachable!("not a header stage"),
        }
        Ok(())
    }

    fn check_first_byte(&self) -> Result<(), &'static str> {
        if self.first_byte & RESERVED_BITS != 0 {
            return Err("reserved bits set");
        }
        let fin = self.first_byte & FIN != 0;
        match self.opcode() {
            OPCODE_CONTINUATION if !self.in_fragmented_message => {
                Err("continuation frame outside a fragmented message")
            }
            OPCODE_TEXT | OPCODE_BINARY if self.in_fragmented_message => {
                Err("new message inside a fragmented message")
            }
            OPCODE_CONTINUATION | OPCODE_TEXT | OPCODE_BINARY => Ok(()),
            OPCODE_CLOSE | OPCODE_PING | OPCODE_PONG if !fin => Err("fragmented control frame"),
            OPCODE_CLOSE | OPCODE_PING | OPCODE_PONG => Ok(()),
            _ => Err("reserved opcode"),
        }
    }

    fn check_length(&mut self) -> Result<(), &'static str> {
        if self.is_control() && self.payload_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err("control frame over 125 bytes");
        }
        if !self.is_control() && self.payload_len > self.max_data_frame {
            return Err("data frame over the size limit");
        }
        if self.opcode() == OPCODE_TEXT {
            self.in_text_message = true;
        } else if self.opcode() == OPCODE_BINARY {
            self.in_text_message = false;
        }
        if self.keeps_text
            && !self.is_control()
            && self.in_text_message
            && self.text.len() as u64 + self.payload_len > self.max_data_frame
        {
            return Err("text message over the size limit");
        }
        self.stage = Stage::MaskKey { bytes_left: 4 };
        Ok(())
    }

    fn take_payload<'b>(
        &mut self,
        bytes: &'b [u8],
        on_frame: &mut impl FnMut(Incoming),
    ) -> &'b [u8] {
        let left = self.payload_len - self.payload_received;
        let take = usize::try_from(left).map_or(bytes.len(), |left| left.min(bytes.len()));
        let (taken, rest) = bytes.split_at(take);
        let start = self.payload_received as usize;
        if self.is_control() {
            let target = &mut self.control_payload[start..start + taken.len()];
            for ((slot, &byte), offset) in target.iter_mut().zip(taken).zip(start..) {
                *slot = byte ^ self.mask[offset % 4];
            }
        } else if self.keeps_text && self.in_text_message {
            let mask = self.mask;
            self.text.extend(
                taken
                    .iter()
                    .zip(start..)
                    .map(|(&byte, offset)| byte ^ mask[offset % 4]),
            );
        }
        self.payload_received += taken.len() as u64;
        if self.payload_received == self.payload_len {
            self.finish_frame(on_frame);
        }
        rest
    }

    fn received_control_payload(&self) -> &[u8] {
        &self.control_payload[..self.payload_received as usize]
    }

    fn finish_frame(&mut self, on_frame: &mut impl FnMut(Incoming)) {
        self.stage = Stage::FirstByte;
        let event = match self.opcode() {
            OPCODE_PING => Incoming::Ping(self.received_control_payload()),
            OPCODE_PONG => Incoming::Pong,
            OPCODE_CLOSE => {
                self.stage = Stage::Ended;
                close_event(self.received_control_payload())
            }
            _ => {
                self.in_fragmented_message = self.first_byte & FIN == 0;
                if self.keeps_text && self.in_text_message {
                    if !self.in_fragmented_message {
                        let text = std::mem::take(&mut self.text);
                        on_frame(Incoming::Text(&text));
                    }
                    return;
                }
                Incoming::Data(self.payload_len)
            }
        };
        on_frame(event);
    }
}

fn close_event(payload: &[u8]) -> Incoming<'_> {
    match *payload {
        [] => Incoming::Close(None),
        [_] => Incoming::Error("close payload of one byte"),
        [high, low, ..] => match u16::from_be_bytes([high, low]) {
            code if is_valid_close_code(code) => Incoming::Close(Some(code)),
            _ => Incoming::Error("invalid close code"),
        },
    }
}

/// Codes a peer may send (RFC 6455 §7.4 and the IANA registry); 1005, 1006 and 1015 are
/// only for reporting and never appear on the wire.
fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(first_byte: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut frame = vec![first_byte];
        match payload.len() {
            len @ 0..=125 => frame.push(MASKED | len as u8),
            len @ 126..=0xFFFF => {
                frame.push(MASKED | LENGTH_16);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(MASKED | LENGTH_64);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        frame
    }

    #[derive(Debug, PartialEq)]
    enum Owned {
        Ping(Vec<u8>),
        Pong,
        Close(Option<u16>),
        Data(u64),
        Text(Vec<u8>),
        Error(&'static str),
    }

    fn decode_chunks<'a>(
        reader: &mut FrameReader,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Owned> {
        let mut events = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut |event| {
                events.push(match event {
                    Incoming::Ping(payload) => Owned::Ping(payload.to_vec()),
                    Incoming::Pong => Owned::Pong,
                    Incoming::Close(code) => Owned::Close(code),
                    Incoming::Data(len) => Owned::Data(len),
                    Incoming::Text(text) => Owned::Text(text.to_vec()),
                    Incoming::Error(why) => Owned::Error(why),
                })
            });
        }
        events
    }

    fn decode(bytes: &[u8]) -> Vec<Owned> {
        decode_chunks(&mut FrameReader::new(1 << 20), [bytes])
    }

    const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn upgrade_checks() {
        let key = Some("dGhlIHNhbXBsZSBub25jZQ==");
        let accept = Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_owned());
        assert_eq!(
            check_upgrade(Some("Upgrade"), Some("websocket"), Some("13"), key),
            accept
        );
        assert_eq!(
            check_upgrade(
                Some("keep-alive, UPGRADE"),
                Some("WebSocket"),
                Some("13"),
                key
            ),
            accept
        );
        assert!(check_upgrade(Some("keep-alive"), Some("websocket"), Some("13"), key).is_err());
        assert!(check_upgrade(Some("upgraded"), Some("websocket"), Some("13"), key).is_err());
        assert!(check_upgrade(None, Some("websocket"), Some("13"), key).is_err());
        assert!(check_upgrade(Some("upgrade"), Some("h2c"), Some("13"), key).is_err());
        assert!(check_upgrade(Some("upgrade"), None, Some("13"), key).is_err());
        assert_eq!(
            check_upgrade(Some("upgrade"), Some("websocket"), Some("8"), key),
            Err(UNSUPPORTED_VERSION)
        );
        assert_eq!(
            check_upgrade(Some("upgrade"), Some("websocket"), None, key),
            Err(UNSUPPORTED_VERSION)
        );
        for bad_key in [
            None,
            Some(""),
            Some("c2hvcnQ="),
            Some("dGhlIHNhbXBsZSBub25jZSE="),
            Some("not base64 at all!!!!!=="),
        ] {
            assert!(
                check_upgrade(Some("upgrade"), Some("websocket"), Some("13"), bad_key).is_err()
            );
        }
    }

    #[test]
    fn response_head_switches_protocols() {
        let head = String::from_utf8(response_head("abc=")).unwrap();
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(head.contains("\r\nUpgrade: websocket\r\n"));
        assert!(head.contains("\r\nConnection: Upgrade\r\n"));
        assert!(head.ends_with("\r\nSec-WebSocket-Accept: abc=\r\n\r\n"));
    }

    #[test]
    fn text_lengths_use_the_shortest_encoding() {
        for (len, header) in [
            (0, vec![0x81, 0]),
            (125, vec![0x81, 125]),
            (126, vec![0x81, 126, 0, 126]),
            (65535, vec![0x81, 126, 0xFF, 0xFF]),
            (65536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let payload = vec![b'x'; len];
            let mut out = Vec::new();
            push_text(&mut out, &payload);
            assert_eq!(out[..header.len()], header, "length {len}");
            assert_eq!(out[header.len()..], payload, "length {len}");
        }
    }

    #[test]
    fn control_frames_are_capped_at_125_bytes() {
        let mut out = Vec::new();
        push_ping(&mut out, &[7; 125]);
        assert_eq!(out[..2], [0x89, 125]);
        assert_eq!(out.len(), 127);
        let mut out = Vec::new();
        push_pong(&mut out, &[7; 126]);
        assert_eq!(out[..2], [0x8A, 125]);
        assert_eq!(out.len(), 127);
    }

    #[test]
    fn close_reason_is_cut_at_a_character_boundary() {
        let mut out = Vec::new();
        push_close(&mut out, 1000, "bye");
        assert_eq!(out, [0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);
        let mut out = Vec::new();
        push_close(&mut out, 1001, &"é".repeat(100));
        assert_eq!(out[..4], [0x88, 124, 0x03, 0xE9]);
        assert_eq!(std::str::from_utf8(&out[4..]).unwrap(), "é".repeat(61));
        let mut out = Vec::new();
        push_close(&mut out, 1008, &"a".repeat(200));
        assert_eq!(out[1], 125);
    }

    #[test]
    fn frames_split_at_every_boundary_decode_alike() {
        let mut stream = masked(0x89, b"are you there?", MASK);
        stream.extend(masked(0x81, b"hello", MASK));
        stream.extend(masked(0x8A, b"", MASK));
        stream.extend(masked(0x82, &[9; 300], MASK));
        stream.extend(masked(0x89, &[0xAB; 125], MASK));
        stream.extend(masked(0x88, b"\x03\xE8done", MASK));
        let expected = vec![
            Owned::Ping(b"are you there?".to_vec()),
            Owned::Data(5),
            Owned::Pong,
            Owned::Data(300),
            Owned::Ping(vec![0xAB; 125]),
            Owned::Close(Some(1000)),
        ];
        assert_eq!(decode(&stream), expected);
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            let events = decode_chunks(&mut FrameReader::new(1 << 20), [a, b]);
            assert_eq!(events, expected, "split at {split}");
        }
        for (i, j) in (0..=stream.len()).flat_map(|i| (i..=stream.len()).map(move |j| (i, j))) {
            let chunks = [&stream[..i], &stream[i..j], &stream[j..]];
            let events = decode_chunks(&mut FrameReader::new(1 << 20), chunks);
            assert_eq!(events, expected, "split at {i} and {j}");
        }
        let events = decode_chunks(&mut FrameReader::new(1 << 20), stream.chunks(1));
        assert_eq!(events, expected);
    }

    #[test]
    fn long_lengths_decode() {
        let frame = masked(0x82, &vec![1; 65536], MASK);
        assert_eq!(frame[1], MASKED | LENGTH_64);
        assert_eq!(decode(&frame), [Owned::Data(65536)]);
        let frame = masked(0x82, &vec![1; 65535], MASK);
        assert_eq!(frame[1], MASKED | LENGTH_16);
        assert_eq!(decode(&frame), [Owned::Data(65535)]);
    }

    #[test]
    fn fragmented_messages_decode() {
        let mut reader = FrameReader::new(1 << 20);
        assert!(reader.is_idle());
        decode_chunks(&mut reader, [&masked(0x01, b"hel", MASK)[..]]);
        assert!(!reader.is_idle());
        let mut stream = masked(0x01, b"hel", MASK);
        stream.extend(masked(0x89, b"", MASK));
        stream.extend(masked(0x00, b"l", MASK));
        stream.extend(masked(0x80, b"o", MASK));
        stream.extend(masked(0x82, b"", MASK));
        assert_eq!(
            decode(&stream),
            [
                Owned::Data(3),
                Owned::Ping(vec![]),
                Owned::Data(1),
                Owned::Data(1),
                Owned::Data(0)
            ]
        );
    }

    #[test]
    fn close_payloads() {
        assert_eq!(decode(&masked(0x88, b"", MASK)), [Owned::Close(None)]);
        assert_eq!(
            decode(&masked(0x88, b"\x0F\xA0", MASK)),
            [Owned::Close(Some(4000))]
        );
        assert_eq!(
            decode(&masked(0x88, b"\x03", MASK)),
            [Owned::Error("close payload of one byte")]
        );
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            let payload = code.to_be_bytes();
            assert_eq!(
                decode(&masked(0x88, &payload, MASK)),
                [Owned::Error("invalid close code")],
                "{code}"
            );
        }
    }

    #[test]
    fn nothing_is_read_after_a_close() {
        let mut stream = masked(0x88, b"\x03\xE8", MASK);
        stream.extend(masked(0x89, b"late", MASK));
        let mut reader = FrameReader::new(1 << 20);
        assert_eq!(
            decode_chunks(&mut reader, [&stream[..]]),
            [Owned::Close(Some(1000))]
        );
        assert!(reader.has_ended());
    }

    #[test]
    fn protocol_errors() {
        let error = |bytes: &[u8]| {
            let mut stream = bytes.to_vec();
            stream.extend(masked(0x89, b"after", MASK));
            let mut reader = FrameReader::new(1000);
            let events = decode_chunks(&mut reader, stream.chunks(1));
            assert!(reader.has_ended());
            match events[..] {
                [Owned::Error(why)] => why,
                _ => panic!("{events:?}"),
            }
        };
        assert_eq!(error(&[0x81, 0x02, b'h', b'i']), "unmasked client frame");
        assert_eq!(error(&[0x81, 0x00]), "unmasked client frame");
        assert_eq!(error(&masked(0xC1, b"x", MASK)), "reserved bits set");
        assert_eq!(error(&masked(0x91, b"x", MASK)), "reserved bits set");
        for opcode in [0x3, 0x7, 0xB, 0xF] {
            assert_eq!(error(&masked(0x80 | opcode, b"", MASK)), "reserved opcode");
        }
        assert_eq!(
            error(&masked(0x89, &[0; 126], MASK)),
            "control frame over 125 bytes"
        );
        assert_eq!(
            error(&masked(0x88, &[0; 200], MASK)),
            "control frame over 125 bytes"
        );
        assert_eq!(error(&masked(0x09, b"", MASK)), "fragmented control frame");
        assert_eq!(error(&masked(0x08, b"", MASK)), "fragmented control frame");
        assert_eq!(
            error(&masked(0x82, &[0; 1001], MASK)),
            "data frame over the size limit"
        );
        assert_eq!(
            error(&[0x82, MASKED | LENGTH_64, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            "data frame over the size limit"
        );
        assert_eq!(
            error(&masked(0x80, b"", MASK)),
            "continuation frame outside a fragmented message"
        );
        let mut stream = masked(0x01, b"a", MASK);
        stream.extend(masked(0x81, b"b", MASK));
        assert_eq!(
            decode(&stream),
            [
                Owned::Data(1),
                Owned::Error("new message inside a fragmented message")
            ]
        );
    }

    #[test]
    fn data_frame_at_the_limit_is_accepted() {
        let mut reader = FrameReader::new(1000);
        assert_eq!(
            decode_chunks(&mut reader, [&masked(0x82, &[0; 1000], MASK)[..]]),
            [Owned::Data(1000)]
        );
        assert!(reader.is_idle());
    }

    /// Inline, a reader is its control payload, its text buffer's handle and a few
    /// counters, on every target: nothing in it grows with a frame or a limit.
    #[test]
    fn reader_is_small() {
        const COUNTERS: usize = 64;
        let size = std::mem::size_of::<FrameReader>();
        let inline = MAX_CONTROL_PAYLOAD + std::mem::size_of::<Vec<u8>>();
        assert!(
            size <= inline + COUNTERS,
            "FrameReader is {size} bytes: {} beyond its control payload and text handle",
            size - inline
        );
    }

    /// The heap a reader holds is a text message's bytes while it arrives, nothing for
    /// data it skips, and nothing once a message is reported.
    #[test]
    fn a_reader_holds_heap_memory_only_while_a_text_message_arrives() {
        let data = masked(0x82, &[b'x'; 1000], MASK);
        let mut skipping = FrameReader::new(4096);
        assert_eq!(decode_chunks(&mut skipping, [&data[..600]]), []);
        assert_eq!(skipping.text.capacity(), 0);

        let mut texts = FrameReader::with_text(4096);
        let mut message = masked(0x01, &[b'a'; 300], MASK);
        message.extend(masked(0x80, &[b'b'; 300], MASK));
        assert_eq!(decode_chunks(&mut texts, [&message[..400]]), []);
        assert!(texts.text.capacity() >= 300, "the message so far is kept");
        let events = decode_chunks(&mut texts, [&message[400..]]);
        assert!(matches!(&events[..], [Owned::Text(t)] if t.len() == 600));
        assert!(texts.is_idle());
        assert_eq!(texts.text.capacity(), 0, "the reported message is let go");
        assert_eq!(decode_chunks(&mut texts, [&data[..]]), [Owned::Data(1000)]);
        assert_eq!(texts.text.capacity(), 0, "binary data is skipped unread");
    }

    #[test]
    fn text_readers_report_whole_text_messages() {
        let mut stream = masked(0x01, b"{\"a\"", MASK);
        stream.extend(masked(0x89, b"p", MASK));
        stream.extend(masked(0x80, b":1}", MASK));
        stream.extend(masked(0x82, b"bin", MASK));
        stream.extend(masked(0x81, b"{}", MASK));
        for split in 0..stream.len() {
            let mut reader = FrameReader::with_text(64);
            let (a, b) = stream.split_at(split);
            assert_eq!(
                decode_chunks(&mut reader, [a, b]),
                [
                    Owned::Ping(b"p".to_vec()),
                    Owned::Text(br#"{"a":1}"#.to_vec()),
                    Owned::Data(3),
                    Owned::Text(b"{}".to_vec()),
                ]
            );
            assert!(reader.is_idle());
        }
        let mut long = masked(0x01, &[b'x'; 40], MASK);
        long.extend(masked(0x80, &[b'x'; 40], MASK));
        assert_eq!(
            decode_chunks(&mut FrameReader::with_text(64), [&long[..]]),
            [Owned::Error("text message over the size limit")]
        );
    }
}

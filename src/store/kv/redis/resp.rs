//! A blocking Redis connection speaking RESP2: commands as arrays of bulk strings, replies
//! read whole. Pipelines send several commands before reading their replies.
//!
//! Invariants: after any I/O or protocol error the socket is dropped, so the next command
//! starts on a fresh connection (with `AUTH` and `SELECT` again) and never reads a reply
//! meant for an earlier one; a reply is bounded (`MAX_BULK`, `MAX_ITEMS`) so that a
//! broken or hostile server cannot make the store allocate without limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::store::{Error, Result};

/// The largest bulk string taken from the server.
const MAX_BULK: usize = 64 << 20;
/// The most items in one array reply.
const MAX_ITEMS: usize = 1 << 20;
/// Nesting of arrays taken at most (EXEC's replies hold arrays).
const MAX_DEPTH: usize = 4;
/// How long a connect, a send or a reply may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `$-1` or `*-1`.
    Nil,
    /// `+OK` and the like.
    Status(String),
    /// `:n`.
    Int(i64),
    /// `$n`.
    Bulk(Vec<u8>),
    /// `*n`.
    Array(Vec<Reply>),
    /// `-ERR …`: the command failed; the connection is fine.
    Error(String),
}

impl Reply {
    /// The reply as a result: a server error becomes [`Error::Storage`].
    pub fn ok(self) -> Result<Reply> {
        match self {
            Reply::Error(e) => Err(Error::Storage(format!("redis: {e}"))),
            other => Ok(other),
        }
    }

    /// A bulk string's bytes; `None` for nil.
    pub fn into_bytes(self) -> Result<Option<Vec<u8>>> {
        match self.ok()? {
            Reply::Bulk(b) => Ok(Some(b)),
            Reply::Nil => Ok(None),
            other => Err(unexpected(&other)),
        }
    }

    /// An integer reply.
    pub fn into_int(self) -> Result<i64> {
        match self.ok()? {
            Reply::Int(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// An array's items; nil is an empty array.
    pub fn into_array(self) -> Result<Vec<Reply>> {
        match self.ok()? {
            Reply::Array(items) => Ok(items),
            Reply::Nil => Ok(Vec::new()),
            other => Err(unexpected(&other)),
        }
    }
}

/// The error for a reply of the wrong type.
pub fn unexpected(reply: &Reply) -> Error {
    Error::Storage(format!("redis: unexpected reply {reply:?}"))
}

/// Where the server is and how to log in, from a `redis://` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Address {
    /// `host:port`.
    pub host_port: String,
    /// `AUTH` user, if any.
    pub user: Option<String>,
    /// `AUTH` password, if any.
    pub password: Option<String>,
    /// The database number to `SELECT`.
    pub db: u32,
}

impl Address {
    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    pub fn parse(url: &str) -> std::result::Result<Address, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("{url:?} is not a redis:// URL"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (Some(auth), rest),
            None => (None, rest),
        };
        let (host_port, db) = match rest.split_once('/') {
            Some((hp, "")) => (hp, 0),
            Some((hp, db)) => (
                hp,
                db.parse()
                    .map_err(|_| format!("{db:?} in {url:?} is not a database number"))?,
            ),
            None => (rest, 0),
        };
        if host_port.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let host_port = if host_port.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !host_port.ends_with(']')
        }) {
            host_port.to_owned()
        } else {
            format!("{host_port}:6379")
        };
        let (user, password) = match auth {
            None => (None, None),
            Some(auth) => match auth.split_once(':') {
                Some(("", password)) => (None, Some(password.to_owned())),
                Some((user, password)) => (Some(user.to_owned()), Some(password.to_owned())),
                None => (None, Some(auth.to_owned())),
            },
        };
        Ok(Address {
            host_port,
            user,
            password,
            db,
        })
    }
}

/// One connection, opened on first use and again after any failure.
pub struct Connection {
    address: Address,
    socket: Option<(BufReader<TcpStream>, TcpStream)>,
    /// How many sockets were dropped: state a command left on the server (`WATCH`) holds
    /// only while this stays the same.
    generation: u64,
    /// How long a reply may take; `None`: forever (a subscriber waiting for messages).
    read_timeout: Option<Duration>,
}

impl Connection {
    /// A connection to `address` (not opened yet).
    pub fn new(address: Address, read_timeout: Option<Duration>) -> Connection {
        Connection {
            address,
            socket: None,
            generation: 0,
            read_timeout,
        }
    }

    /// How many sockets were dropped so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Runs one command.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Reply> {
        let mut replies = self.pipeline(&[args.to_vec()])?;
        replies
            .pop()
            .ok_or_else(|| Error::Storage("redis: no reply".into()))
    }

    /// Runs a command that may run twice (a read): when a socket that was open already
    /// fails (the server closed it meanwhile), once more on a new one.
    pub fn call_again_on_failure(&mut self, args: &[&[u8]]) -> Result<Reply> {
        let reused = self.socket.is_some();
        match self.call(args) {
            Err(_) if reused => self.call(args),
            result => result,
        }
    }

    /// Sends every command, then reads one reply for each.
    pub fn pipeline(&mut self, commands: &[Vec<&[u8]>]) -> Result<Vec<Reply>> {
        let result = self.try_pipeline(commands);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Sends a command whose replies come later ([`Connection::read`]), as `SUBSCRIBE`'s do.
    pub fn send(&mut self, args: &[&[u8]]) -> Result<()> {
        let result = self.open().and_then(|(_, writer)| {
            writer.write_all(&encode(args)).map_err(io_error)?;
            writer.flush().map_err(io_error)
        });
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Reads the next reply (on a subscribed connection: the next message).
    pub fn read(&mut self) -> Result<Reply> {
        let result = match &mut self.socket {
            Some((reader, _)) => read_reply(reader, 0),
            None => Err(Error::Storage("redis: not connected".into())),
        };
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Drops the socket; the next command connects again.
    pub fn reset(&mut self) {
        if self.socket.take().is_some() {
            self.generation += 1;
        }
    }

    fn try_pipeline(&mut self, commands: &[Vec<&[u8]>]) -> Result<Vec<Reply>> {
        let (reader, writer) = self.open()?;
        let mut out = Vec::new();
        for args in commands {
            out.extend_from_slice(&encode(args));
        }
        writer.write_all(&out).map_err(io_error)?;
        writer.flush().map_err(io_error)?;
        commands.iter().map(|_| read_reply(reader, 0)).collect()
    }

    fn open(&mut self) -> Result<(&mut BufReader<TcpStream>, &mut TcpStream)> {
        if self.socket.is_none() {
            self.socket = Some(self.connect()?);
        }
        let (reader, writer) = self.socket.as_mut().expect("opened above");
        Ok((reader, writer))
    }

    fn connect(&self) -> Result<(BufReader<TcpStream>, TcpStream)> {
        let address = &self.address;
        let target = address
            .host_port
            .to_socket_addrs()
            .map_err(|e| Error::Storage(format!("redis: {}: {e}", address.host_port)))?
            .next()
            .ok_or_else(|| {
                Error::Storage(format!("redis: {} has no address", address.host_port))
            })?;
        let stream = TcpStream::connect_timeout(&target, IO_TIMEOUT)
            .map_err(|e| Error::Storage(format!("redis: {}: {e}", address.host_port)))?;
        stream.set_nodelay(true).map_err(io_error)?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(io_error)?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(io_error)?;
        let mut reader = BufReader::new(stream.try_clone().map_err(io_error)?);
        let mut writer = stream;
        let mut hello: Vec<Vec<&[u8]>> = Vec::new();
        match (&address.user, &address.password) {
            (Some(user), Some(password)) => {
                hello.push(vec![b"AUTH", user.as_bytes(), password.as_bytes()]);
            }
            (None, Some(password)) => hello.push(vec![b"AUTH", password.as_bytes()]),
            _ => {}
        }
        let db = address.db.to_string();
        if address.db != 0 {
            hello.push(vec![b"SELECT", db.as_bytes()]);
        }
        if !hello.is_empty() {
            let mut out = Vec::new();
            for args in &hello {
                out.extend_from_slice(&encode(args));
            }
            writer.write_all(&out).map_err(io_error)?;
            for _ in &hello {
                read_reply(&mut reader, 0)?.ok()?;
            }
        }
        writer
            .set_read_timeout(self.read_timeout)
            .map_err(io_error)?;
        Ok((reader, writer))
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::Storage(format!("redis: {e}"))
}

/// A command as RESP: an array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_line(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(64 * 1024)
        .read_until(b'\n', &mut line)
        .map_err(io_error)?;
    if !line.ends_with(b"\r\n") {
        return Err(Error::Storage(
            "redis: the connection closed mid-reply".into(),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn number(line: &[u8]) -> Result<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Storage("redis: a malformed length".into()))
}

/// Reads one reply.
pub fn read_reply(reader: &mut impl BufRead, depth: usize) -> Result<Reply> {
    let line = read_line(reader)?;
    let (kind, rest) = line
        .split_first()
        .ok_or_else(|| Error::Storage("redis: an empty reply line".into()))?;
    match kind {
        b'+' => Ok(Reply::Status(String::from_utf8_lossy(rest).into_owned())),
        b'-' => Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned())),
        b':' => Ok(Reply::Int(number(rest)?)),
        b'$' => {
            let len = number(rest)?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_BULK {
                return Err(Error::Storage(format!("redis: a reply of {len} bytes")));
            }
            let mut bytes = vec![0; len + 2];
            reader.read_exact(&mut bytes).map_err(io_error)?;
            bytes.truncate(len);
            Ok(Reply::Bulk(bytes))
        }
        b'*' => {
            let len = number(rest)?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_ITEMS || depth >= MAX_DEPTH {
                return Err(Error::Storage(format!("redis: an array of {len} items")));
            }
            (0..len)
                .map(|_| read_reply(reader, depth + 1))
                .collect::<Result<Vec<_>>>()
                .map(Reply::Array)
        }
        other => Err(Error::Storage(format!(
            "redis: a reply of unknown type {:?}",
            char::from(*other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply> {
        read_reply(&mut std::io::Cursor::new(bytes.to_vec()), 0)
    }

    #[test]
    fn replies_of_every_type_are_read() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Status("OK".into()));
        assert_eq!(parse(b":-3\r\n").unwrap(), Reply::Int(-3));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Nil);
        assert_eq!(
            parse(b"$4\r\na\r\nb\r\n").unwrap(),
            Reply::Bulk(b"a\r\nb".to_vec())
        );
        assert_eq!(
            parse(b"*2\r\n$1\r\nx\r\n*-1\r\n").unwrap(),
            Reply::Array(vec![Reply::Bulk(b"x".to_vec()), Reply::Nil])
        );
        assert!(matches!(
            parse(b"-ERR no\r\n").unwrap().ok(),
            Err(Error::Storage(_))
        ));
    }

    #[test]
    fn broken_replies_are_errors_not_allocations() {
        assert!(parse(b"$99999999999\r\n").is_err());
        assert!(parse(b"*99999999999\r\n").is_err());
        assert!(parse(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n").is_err());
        assert!(parse(b"$5\r\nab").is_err());
        assert!(parse(b"+OK").is_err());
        assert!(parse(b"?\r\n").is_err());
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            encode(&[b"GET", b"a b"]),
            b"*2\r\n$3\r\nGET\r\n$3\r\na b\r\n".to_vec()
        );
    }

    #[test]
    fn urls_name_host_port_login_and_database() {
        let a = Address::parse("redis://:pw@db.lan:6390/2").unwrap();
        assert_eq!(a.host_port, "db.lan:6390");
        assert_eq!((a.user, a.password, a.db), (None, Some("pw".into()), 2));
        let a = Address::parse("redis://127.0.0.1").unwrap();
        assert_eq!((a.host_port.as_str(), a.db), ("127.0.0.1:6379", 0));
        let a = Address::parse("redis://u:p@[::1]:7000/").unwrap();
        assert_eq!(a.host_port, "[::1]:7000");
        assert_eq!(a.user.as_deref(), Some("u"));
        assert!(Address::parse("http://x").is_err());
        assert!(Address::parse("redis:///1").is_err());
        assert!(Address::parse("redis://h/x").is_err());
    }
}

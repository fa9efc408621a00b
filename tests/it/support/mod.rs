//! Test harness: runs the real `openpush` binary on 127.0.0.1:0 with a temporary database
//! and talks to it over real sockets, with raw HTTP/1.1 so that protocol edges are visible.
//!
//! Requests are raw bytes, so that a test can send anything; what the server sends back is
//! read as a client reads it, by `openpush-wire` (response heads and bodies, SSE events,
//! base64, JSON fields), so the tests check the server against the client's reading.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use openpush_wire::http::{self, Framing, Head};
use openpush_wire::url::Url;
use openpush_wire::{base64, json, sse};

pub mod api;
pub mod conn;
pub mod push;
pub mod vapid;
pub mod webpush;
pub mod ws;

pub const BIN: &str = env!("CARGO_BIN_EXE_openpush");
pub const TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one test's database and config.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Server {
    pub dir: PathBuf,
    pub db: PathBuf,
    pub config: PathBuf,
    pub addr: SocketAddr,
    child: Child,
    pub log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts a server whose config file holds `config` (plus the db path and listen address).
    pub fn start_with(name: &str, config: &str) -> Server {
        Server::start_in(name, None, config, Startup::Drop)
    }

    /// Like [`Server::start_with`], with the open-file limit (`RLIMIT_NOFILE`, soft and
    /// hard) set to `nofile`, as `ulimit -n` would.
    pub fn start_with_nofile(name: &str, config: &str, nofile: u32) -> Server {
        Server::start_in(name, None, config, Startup::Nofile(nofile))
    }

    /// A server in a fresh directory, on a copy of `db_file` if given.
    fn start_in(name: &str, db_file: Option<&Path>, config: &str, startup: Startup) -> Server {
        let dir = temp_dir(name);
        let db = dir.join("openpush.redb");
        if let Some(db_file) = db_file {
            std::fs::copy(db_file, &db)
                .unwrap_or_else(|e| panic!("copy {}: {e}", db_file.display()));
        }
        let config_path = dir.join("openpush.conf");
        std::fs::write(&config_path, format!("db = {}\n{config}\n", db.display())).unwrap();
        let (child, addr, log) = spawn(&config_path, "127.0.0.1:0", startup);
        Server {
            dir,
            db,
            config: config_path,
            addr,
            child,
            log,
        }
    }

    pub fn start(name: &str) -> Server {
        Server::start_with(name, "")
    }

    /// Kills the server with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same database and port.
    /// Restarts after a crash (kill -9).
    pub fn restart(&mut self) {
        self.kill9();
        let (child, addr, log) = spawn(&self.config, &self.addr.to_string(), Startup::Drop);
        self.child = child;
        self.addr = addr;
        self.log = log;
    }

    /// Restarts after a clean stop (SIGTERM): every commit so far is on disk, lazy ones
    /// (confirmations) included.
    pub fn restart_gracefully(&mut self) {
        assert!(self.terminate().success(), "a clean stop");
        let (child, addr, log) = spawn(&self.config, &self.addr.to_string(), Startup::Drop);
        self.child = child;
        self.addr = addr;
        self.log = log;
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the CLI against this server's database (through its control socket).
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        cli(&self.config, args, stdin)
    }

    pub fn add_user(&self, name: &str, password: &str) {
        let out = self.cli(
            &["user", "add", name, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a client through the CLI and returns its key.
    pub fn add_client(&self, user: &str, name: &str) -> String {
        let out = self.cli(&["client", "add", "--user", user, name], "");
        assert!(
            out.status.success(),
            "client add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Registers an application on a client and returns its routing token.
    pub fn add_app(&self, key: &str, registration_id: &str) -> String {
        let r = self.request(
            "POST",
            "/application",
            &[("X-Openpush-Key", key)],
            &format!(r#"{{"registration_id":"{registration_id}"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json_field("routing_token")
    }

    /// A user, a client and one app: (client key, routing token).
    pub fn device(&self, user: &str) -> (String, String) {
        self.add_user(user, "secret");
        let key = self.add_client(user, "phone");
        let token = self.add_app(&key, "app1");
        (key, token)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        request(self.addr, method, path, headers, body)
    }

    pub fn post_message(&self, body: &str) -> Response {
        self.request(
            "POST",
            "/message",
            &[("Content-Type", "application/json")],
            body,
        )
    }

    pub fn subscribe(&self, key: &str, last_event_id: Option<u64>) -> Sse {
        Sse::open(self.addr, key, last_event_id)
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let config = config.to_str().unwrap();
    all.extend(["--config", config]);
    run_cli(&all, stdin)
}

pub fn run_cli(args: &[&str], stdin: &str) -> Output {
    run_with_stdin(Command::new(BIN).args(args), stdin)
}

/// Runs a command to its end with `stdin` as its standard input; its output captured.
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// What a command wrote to its standard output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command wrote to its standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What becomes of the lines the server logs before it listens.
#[derive(Clone, Copy, PartialEq)]
enum Startup {
    Drop,
    /// Put back in front of the log (a schema upgrade is logged there).
    Keep,
    /// Put back, and the server runs with this open-file limit.
    Nofile(u32),
}

fn spawn(
    config: &Path,
    listen: &str,
    startup: Startup,
) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        // `sh -c 'ulimit -n N; exec "$0" "$@"' openpush serve …` keeps the process id.
        let mut command = match startup {
            Startup::Nofile(n) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN]);
                sh
            }
            _ => Command::new(BIN),
        };
        let mut child = command
            .args([
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                listen,
                "--log-level",
                "debug",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if std::env::var_os("OPENPUSH_TEST_LOG").is_some() {
                    eprintln!("server: {line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut early = Vec::new();
        while let Ok(line) = rx.recv_timeout(TIMEOUT) {
            let addr = line
                .split("listening on http://")
                .nth(1)
                .map(|a| a.trim().parse().unwrap());
            early.push(line);
            let Some(addr) = addr else { continue };
            if startup == Startup::Drop {
                return (child, addr, rx);
            }
            let (replay, log) = mpsc::channel();
            std::thread::spawn(move || {
                for line in early.into_iter().chain(rx) {
                    if replay.send(line).is_err() {
                        break;
                    }
                }
            });
            return (child, addr, log);
        }
        let _ = child.kill();
        let _ = child.wait();
        // A restart on the same port can race the old socket's release; try again briefly.
        assert!(
            Instant::now() < deadline,
            "server did not start: {:?}",
            early.last()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names in lower case, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn from_wire(head: Head, body: Vec<u8>) -> Response {
        let headers = head
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Response {
            status: head.status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A top-level string or number field of a JSON object body, as text.
    pub fn json_field(&self, field: &str) -> String {
        json_field(&self.text(), field).unwrap_or_else(|| panic!("no {field} in {}", self.text()))
    }

    /// Asserts ntfy's error shape, `{"code":…,"http":…,"error":…}`, with this code.
    pub fn assert_ntfy_error(&self, status: u16, code: u32) {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.text();
        assert!(
            body.starts_with(&format!("{{\"code\":{code},\"http\":{status},\"error\":")),
            "{body}"
        );
        assert!(!body.contains("\"detail\""), "{body}");
        assert!(self.header("content-type").unwrap_or("").contains("json"));
    }

    /// Asserts an error of this status in the form of the door that answered: OpenPush's
    /// problem JSON, or ntfy's `{"code","http","error"}` on the ntfy door's routes.
    pub fn assert_error(&self, status: u16) {
        if self.text().starts_with("{\"code\":") {
            assert_eq!(self.status, status, "{}", self.text());
            assert!(
                self.text().contains(&format!("\"http\":{status},")),
                "{}",
                self.text()
            );
            assert!(self.header("content-type").unwrap_or("").contains("json"));
        } else {
            self.assert_openpush_error(status);
        }
    }

    /// Asserts the OpenPush error shape.
    pub fn assert_openpush_error(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.text();
        for field in ["\"status\":", "\"title\":", "\"detail\":", "\"type\":"] {
            assert!(body.contains(field), "error body lacks {field}: {body}");
        }
        assert!(body.contains(&format!("\"status\":{status}")), "{body}");
        assert!(self.header("content-type").unwrap_or("").contains("json"));
    }
}

/// The value of the first `"field":` in JSON text, at any depth (an id in a list, a field of
/// an event's `data`): a string unescaped, anything else as its raw text. The key is found by
/// its text, as the tests' look-ups need; the value is read by the wire's JSON scanner.
pub fn json_field(text: &str, field: &str) -> Option<String> {
    let at = text.find(&format!("{}:", json::quote(field)))?;
    // From the key on, the text is an object's first member as far as the scanner reads it.
    let member = format!("{{{}", &text[at..]);
    let raw = json::field(&member, field)?;
    Some(json::string(raw).unwrap_or_else(|| raw.to_owned()))
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::encode(format!("{user}:{password}").as_bytes())
    )
}

/// A request as the wire's client writes it (`Host: test`, `Connection: close`, a
/// `Content-Length` for a body, a `POST` or a `PUT`), sent by [`send_raw`].
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let url = Url {
        host: addr.ip().to_string(),
        port: addr.port(),
        authority: "test".to_owned(),
        path: path.to_owned(),
    };
    let mut raw = Vec::new();
    http::write_request(&mut raw, method, &url, headers, body.as_bytes()).expect("a Vec");
    send_raw(addr, &raw)
}

/// Sends raw bytes and reads one response until the server closes.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    conn.write_all(raw).unwrap();
    let mut data = Vec::new();
    let _ = conn.read_to_end(&mut data);
    parse_response(&data)
        .unwrap_or_else(|| panic!("unparsable response: {:?}", String::from_utf8_lossy(&data)))
}

/// The response at the start of `data` (a `1xx` one on its own), `None` unless it is
/// complete HTTP/1.x.
pub fn parse_response(data: &[u8]) -> Option<Response> {
    response_at(data).map(|(response, _)| response)
}

/// The complete response at the start of `data` and how many bytes it took: its body framed
/// by `Content-Length` or chunked, or (a body delimited by the close) the rest of `data`.
fn response_at(data: &[u8]) -> Option<(Response, usize)> {
    let (head, head_len) = head_at(data).ok()?;
    let mut body = http::Body::new(&data[head_len..], head.framing().ok()?);
    let bytes = body.read_all(usize::MAX).ok()?;
    let len = data.len() - body.get_ref().len();
    Some((Response::from_wire(head, bytes), len))
}

/// The response head at the start of `data` (a `1xx` one too) and its length in bytes;
/// `Err(Closed)` while it is incomplete.
fn head_at(data: &[u8]) -> Result<(Head, usize), http::Error> {
    let mut rest = data;
    let head = http::read_one_head(&mut rest)?;
    Ok((head, data.len() - rest.len()))
}

/// Reads from `stream` into `buf` until a response head is complete and takes it out of
/// `buf`: the head, and its text without the blank line. `Err` with what came, if no head
/// did by the deadline or what came is not one.
pub fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(Head, String), String> {
    loop {
        match head_at(buf) {
            Ok((head, len)) => {
                let text = String::from_utf8_lossy(&buf[..len]).trim_end().to_owned();
                buf.drain(..len);
                return Ok((head, text));
            }
            Err(http::Error::Closed) if read_more(stream, buf, deadline) => {}
            Err(http::Error::Closed) => return Err(format!("{:?}", String::from_utf8_lossy(buf))),
            Err(e) => return Err(format!("{e}: {:?}", String::from_utf8_lossy(buf))),
        }
    }
}

/// Reads from `stream` into `buf` until the body at its start, framed as `framing` says, is
/// complete, the server closed or the deadline passed: the body, or as much of it as came.
pub fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    framing: Framing,
    deadline: Instant,
) -> Vec<u8> {
    loop {
        let mut body = Vec::new();
        let complete = http::Body::new(&buf[..], framing)
            .read_to_end(&mut body)
            .is_ok();
        if (complete && framing != Framing::Close) || !read_more(stream, buf, deadline) {
            return body;
        }
    }
}

/// Reads what `stream` has into `buf`; false at the deadline or once the peer closed.
/// The stream must have a short read timeout, so that the deadline is checked.
pub fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> bool {
    let mut chunk = [0u8; 65536];
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return false,
        }
    }
    false
}

/// One SSE event as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<u64>,
    pub data: String,
}

/// The longest SSE line or event data read: far above any event the server sends (a
/// message's data is a few KiB), a bound only against a runaway stream.
const MAX_EVENT_BYTES: usize = 16 << 20;

/// A raw SSE connection to `/subscribe`, its events decoded by the wire's SSE decoder.
pub struct Sse {
    pub conn: TcpStream,
    pub status: u16,
    pub head: String,
    parsed_head: Head,
    events: sse::Decoder,
    /// Comment lines (keepalives) read so far; the decoder drops them, so they are counted
    /// here as the bytes come.
    pub comments: usize,
    at_line_start: bool,
    /// The latest `retry:`, in milliseconds.
    pub retry: Option<u64>,
}

impl Sse {
    pub fn open(addr: SocketAddr, key: &str, last_event_id: Option<u64>) -> Sse {
        let id = last_event_id.map(|id| id.to_string());
        let headers: Vec<(&str, &str)> =
            id.iter().map(|id| ("Last-Event-ID", id.as_str())).collect();
        Sse::open_with(addr, key, "/subscribe", &headers)
    }

    /// Reads more bytes into the decoder; false at the deadline or when the server closed.
    fn fill(&mut self, deadline: Instant) -> bool {
        let mut bytes = Vec::new();
        let more = read_more(&mut self.conn, &mut bytes, deadline);
        self.take(&bytes);
        more
    }

    fn take(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.at_line_start && b == b':' {
                self.comments += 1;
            }
            self.at_line_start = b == b'\n';
        }
        self.events.feed(bytes);
    }

    /// The next event, skipping comments and `retry:`; `None` if the server closed or
    /// nothing came within `wait`.
    pub fn next_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        loop {
            let event = self.events.next_event();
            self.retry = self.events.retry_ms();
            match event {
                Ok(Some(event)) => {
                    return Some(Event {
                        id: event.id.and_then(|id| id.parse().ok()),
                        data: event.data,
                    });
                }
                Ok(None) => {}
                Err(e) => panic!("{e}"),
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    pub fn next(&mut self) -> Event {
        self.next_within(TIMEOUT).expect("an event")
    }

    /// True once the server has closed the stream (within `wait`).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.fill(deadline) {}
        Instant::now() < deadline
    }
}

impl Server {
    /// The server process id, e.g. to read its `/proc/<pid>/status`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens a stream on `path` (e.g. `/subscribe?since=3`) with extra request headers.
    pub fn subscribe_with(&self, key: &str, path: &str, headers: &[(&str, &str)]) -> Sse {
        Sse::open_with(self.addr, key, path, headers)
    }
}

impl Sse {
    /// Like [`Sse::open`], with any path and extra headers.
    pub fn open_with(addr: SocketAddr, key: &str, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut raw = format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\nX-Openpush-Key: {key}\r\n"
        );
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        conn.write_all(raw.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let (parsed_head, head) = read_head(&mut conn, &mut buf, Instant::now() + TIMEOUT)
            .unwrap_or_else(|what| panic!("no response head: {what}"));
        let mut sse = Sse {
            conn,
            status: parsed_head.status,
            head,
            parsed_head,
            events: sse::Decoder::new(MAX_EVENT_BYTES),
            comments: 0,
            at_line_start: true,
            retry: None,
        };
        sse.take(&buf);
        sse
    }

    /// A header of the stream's response head.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parsed_head.header(name)
    }
}

impl Server {
    /// Starts a server on a copy of the database file `db_file` (e.g. a fixture), with
    /// `config` as in [`Server::start_with`]. Its `log` also holds the lines the server
    /// wrote before it listened (a schema upgrade, say).
    pub fn start_on_db(name: &str, db_file: &Path, config: &str) -> Server {
        Server::start_in(name, Some(db_file), config, Startup::Keep)
    }

    /// Like [`Server::restart`], but `log` also holds the lines written before listening.
    /// Restarts after a clean stop, keeping the new process's startup log for the test.
    pub fn restart_keeping_startup_log(&mut self) {
        assert!(self.terminate().success(), "a clean stop");
        let (child, addr, log) = spawn(&self.config, &self.addr.to_string(), Startup::Keep);
        self.child = child;
        self.addr = addr;
        self.log = log;
    }

    /// The lines the server has logged so far (waits `wait` for more to arrive).
    pub fn log_lines(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        lines
    }
}

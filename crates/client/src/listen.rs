//! `listen`: the device's one stream, held for as long as the process runs.
//!
//! Each message is decoded (decrypted when its application was registered here), handed on
//! (to `--exec CMD` or as a JSON line on stdout), and only then confirmed: its id is written
//! to `last-event-id` (atomically, fsynced), and the next connection sends it as
//! `Last-Event-ID`, which makes the server drop everything up to it. So:
//! - **never lost**: a message leaves the server only after it was handed on; one whose
//!   CMD fails is not confirmed, the stream is dropped, and after a back-off the server sends
//!   it again (with everything after it);
//! - **never handed on twice**: ids below or at the confirmed one are skipped, whatever the
//!   server sends; the one window is a crash between CMD's exit and the id's fsync.
//!
//! The server keeps confirmed-but-unannounced messages until the next connection, so after
//! [`CONFIRM_BATCH`] messages, or [`CONFIRM_IDLE`] after the last one, the stream reconnects to
//! announce them (each reconnect costs the server a disk write: batching keeps that rare).
//! A stream silent for `--watchdog-secs` (no keepalive) is dead and reconnected; failures
//! back off exponentially, with jitter, up to `--max-backoff-secs`.

use std::collections::HashMap;
use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openpush_wire::http::{self, Body};
use openpush_wire::sse::Decoder;
use openpush_wire::url::Url;
use openpush_wire::{base64, json};
use p256::SecretKey;

use crate::cli::Listen;
use crate::state::{State, StateDir};
use crate::{Failure, ece, keys, net};

/// Reconnect to confirm after this many messages were handed on on one connection.
pub const CONFIRM_BATCH: u32 = 100;
/// …or this long after the last one, when nothing else came.
pub const CONFIRM_IDLE: Duration = Duration::from_secs(10);
/// The first back-off; it doubles on each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// A connection that lasted this long (or handed on a message) was healthy: the back-off
/// starts over.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// The longest event accepted (a 4096-byte body is ~5.5 kB as base64 in JSON).
const MAX_EVENT_BYTES: usize = 64 * 1024;

/// A subscription's private key and auth secret.
struct AppKeys {
    key: SecretKey,
    auth: Vec<u8>,
}

/// One message, ready to hand on.
struct Message {
    id: Option<u64>,
    app: String,
    urgency: String,
    plaintext: Vec<u8>,
}

/// How a connection ended.
enum End {
    /// To confirm what was handed on: reconnect at once.
    Confirm,
    /// It failed or was closed: reconnect after a back-off.
    Retry(String),
}

struct Listener {
    dir: StateDir,
    server: Url,
    key: String,
    apps: HashMap<String, AppKeys>,
    exec: Option<String>,
    watchdog: Duration,
    /// The id last handed on and persisted; only grows.
    confirmed: u64,
    /// Handed on during this connection: the server does not know yet.
    unannounced: u32,
    handed_this_connection: bool,
}

pub fn run(args: &Listen) -> Result<(), Failure> {
    if args.watchdog_secs == 0 || args.max_backoff_secs == 0 {
        return Err(Failure::usage(
            "--watchdog-secs and --max-backoff-secs must be at least 1",
        ));
    }
    let dir = StateDir::open(args.state_dir.as_deref())?;
    let _lock = dir.lock()?;
    let state = dir.load()?.ok_or_else(|| {
        Failure::usage(format!(
            "no device in {}: run openpush-client register first",
            dir.path.display()
        ))
    })?;
    let mut listener = Listener::new(dir, &state, args)?;
    let max_backoff = Duration::from_secs(args.max_backoff_secs);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        listener.handed_this_connection = false;
        match listener.connection()? {
            End::Confirm => backoff = FIRST_BACKOFF,
            End::Retry(why) => {
                if listener.handed_this_connection || started.elapsed() >= HEALTHY_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                let wait = jitter(backoff);
                eprintln!(
                    "openpush-client: {why}; reconnecting in {:.1} s",
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// A wait between `d / 2` and `d`, so that devices cut off together do not return together.
fn jitter(d: Duration) -> Duration {
    let fraction = f64::from(u32::from_le_bytes(keys::random::<4>())) / f64::from(u32::MAX);
    d.mul_f64(0.5 + fraction / 2.0)
}

/// Each registered app's private key and auth secret, as the state file has them.
fn app_keys(dir: &StateDir, state: &State) -> Result<HashMap<String, AppKeys>, Failure> {
    let mut apps = HashMap::new();
    for app in &state.apps {
        let key = keys::parse_private(&app.private_key);
        let auth = base64::decode(&app.auth).filter(|a| a.len() == 16);
        let (Some(key), Some(auth)) = (key, auth) else {
            return Err(Failure::runtime(format!(
                "the keys of {:?} in {} are damaged: register it again",
                app.id,
                dir.path.display()
            )));
        };
        apps.insert(app.id.clone(), AppKeys { key, auth });
    }
    Ok(apps)
}

/// An open stream: its reader, a handle for its read timeout, and the answer's head.
type Open = (BufReader<TcpStream>, TcpStream, http::Head);

impl Listener {
    fn new(dir: StateDir, state: &State, args: &Listen) -> Result<Listener, Failure> {
        let server = net::parse_url(&state.server, "the state's server")?;
        Ok(Listener {
            apps: app_keys(&dir, state)?,
            confirmed: dir.last_id()?,
            dir,
            server,
            key: state.key.clone(),
            exec: args.exec.clone(),
            watchdog: Duration::from_secs(args.watchdog_secs),
            unannounced: 0,
            handed_this_connection: false,
        })
    }

    /// One connection: subscribe (confirming what was handed on), then hand on each message.
    fn connection(&mut self) -> Result<End, Failure> {
        let (reader, control, head) = match self.subscribe()? {
            Ok(open) => open,
            Err(end) => return Ok(end),
        };
        self.unannounced = 0;
        eprintln!(
            "openpush-client: connected to {}, messages up to {} confirmed",
            self.server.origin(),
            self.confirmed
        );
        let framing = head.framing().unwrap_or(http::Framing::Close);
        self.read_stream(Body::new(reader, framing), &control)
    }

    /// Opens the stream: the request, confirming what was handed on, and its answer's head;
    /// `Ok(Err(end))` when the connection is to be tried again.
    fn subscribe(&mut self) -> Result<Result<Open, End>, Failure> {
        let url = self.server.join("/subscribe");
        let stream = match net::connect(&url, self.watchdog) {
            Ok(s) => s,
            Err(e) => return Ok(Err(End::Retry(e))),
        };
        let control = match stream.try_clone() {
            Ok(c) => c,
            Err(e) => return Ok(Err(End::Retry(e.to_string()))),
        };
        let mut reader = BufReader::new(stream);
        let confirmed = self.confirmed.to_string();
        let mut headers = vec![
            ("X-Openpush-Key", self.key.as_str()),
            ("Accept", "text/event-stream"),
        ];
        if self.confirmed > 0 {
            headers.push(("Last-Event-ID", confirmed.as_str()));
        }
        if let Err(e) = http::write_request(reader.get_mut(), "GET", &url, &headers, b"") {
            return Ok(Err(End::Retry(format!("subscribing: {e}"))));
        }
        let head = match http::read_head(&mut reader) {
            Ok(head) => head,
            Err(e) => return Ok(Err(End::Retry(format!("subscribing: {e}")))),
        };
        match head.status {
            200 => {}
            401 => {
                return Err(Failure::runtime(
                    "the server refused this device's key (401): the device was deleted there; \
                     register it again",
                ));
            }
            status => {
                let body = Body::new(reader, head.framing().unwrap_or(http::Framing::Length(0)))
                    .read_all(64 * 1024)
                    .unwrap_or_default();
                let answer = http::Response { head, body };
                let why = net::explain(&answer);
                return Ok(Err(End::Retry(format!(
                    "the server answered {status}: {why}"
                ))));
            }
        }
        Ok(Ok((reader, control, head)))
    }

    /// Hands on each message of the stream until it ends, the watchdog fires or a batch is
    /// to be confirmed.
    fn read_stream(
        &mut self,
        mut body: Body<BufReader<TcpStream>>,
        control: &TcpStream,
    ) -> Result<End, Failure> {
        let mut decoder = Decoder::new(MAX_EVENT_BYTES);
        let mut buf = [0u8; 8192];
        let mut last_byte = Instant::now();
        let mut last_handed = Instant::now();
        loop {
            let now = Instant::now();
            let watchdog_at = last_byte + self.watchdog;
            let confirm_at = (self.unannounced > 0).then(|| last_handed + CONFIRM_IDLE);
            if confirm_at.is_some_and(|at| at <= now) {
                return Ok(End::Confirm);
            }
            if watchdog_at <= now {
                return Ok(End::Retry(format!(
                    "nothing from the server for {} s (no keepalive)",
                    self.watchdog.as_secs()
                )));
            }
            let wake = confirm_at.map_or(watchdog_at, |at| at.min(watchdog_at));
            let timeout = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            let _ = control.set_read_timeout(Some(timeout));
            let n = match body.read_some(&mut buf) {
                Ok(0) => return Ok(End::Retry("the server closed the stream".into())),
                Ok(n) => n,
                Err(http::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Ok(End::Retry(format!("reading the stream: {e}"))),
            };
            last_byte = Instant::now();
            decoder.feed(&buf[..n]);
            loop {
                let event = match decoder.next_event() {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(e) => return Ok(End::Retry(e.to_string())),
                };
                let id = match event.id.as_deref().map(str::parse::<u64>) {
                    None => None,
                    Some(Ok(id)) => Some(id),
                    Some(Err(_)) => return Ok(End::Retry("an event id is not a number".into())),
                };
                if id.is_some_and(|id| id <= self.confirmed) {
                    continue; // handed on before: the server did not know yet
                }
                if let Err(why) = self.hand_on(id, &event.data)? {
                    return Ok(End::Retry(why));
                }
                last_handed = Instant::now();
                if self.unannounced >= CONFIRM_BATCH {
                    return Ok(End::Confirm);
                }
            }
        }
    }

    /// Decodes and hands on one event; `Ok(Err(why))` when it was not handed on and must
    /// come again. A message that can never be decoded is skipped (and confirmed).
    fn hand_on(&mut self, id: Option<u64>, data: &str) -> Result<Result<(), String>, Failure> {
        let shown = id.map_or_else(|| "without id".to_owned(), |id| id.to_string());
        match self.decode(id, data)? {
            Ok(message) => match (self.deliver(&message)?, id) {
                (Ok(()), _) => {}
                (Err(why), Some(_)) => {
                    return Ok(Err(format!(
                        "message {shown} was not handed on ({why}); it comes again"
                    )));
                }
                // TTL 0: the server kept no copy to send again, as its sender asked.
                (Err(why), None) => {
                    eprintln!("openpush-client: a message without id (TTL 0) is lost: {why}");
                }
            },
            Err(why) => eprintln!("openpush-client: message {shown} skipped: {why}"),
        }
        if let Some(id) = id {
            self.dir.save_last_id(id)?;
            self.confirmed = id;
            self.unannounced += 1;
        }
        self.handed_this_connection = true;
        Ok(Ok(()))
    }

    /// The keys of `app`; on a miss the state file is read again, since `register` may have
    /// added the app while this `listen` runs.
    fn keys_for(&mut self, app: &str) -> Result<Option<&AppKeys>, Failure> {
        if !self.apps.contains_key(app)
            && let Some(state) = self.dir.load()?
            && state.key == self.key
        {
            self.apps = app_keys(&self.dir, &state)?;
        }
        Ok(self.apps.get(app))
    }

    fn decode(&mut self, id: Option<u64>, data: &str) -> Result<Result<Message, String>, Failure> {
        let Some(app) = json::string_field(data, "registration_id") else {
            return Ok(Err("the event has no registration_id".into()));
        };
        let Some(raw) = json::field(data, "data") else {
            return Ok(Err("the event has no data".into()));
        };
        let urgency = json::string_field(data, "urgency")
            .or_else(|| json::string_field(data, "priority"))
            .unwrap_or_else(|| "normal".to_owned());
        let plaintext = if json::string_field(data, "encoding").as_deref() == Some("base64") {
            let Some(body) = json::string(raw).and_then(|s| base64::decode(&s)) else {
                return Ok(Err("its data is not base64".into()));
            };
            match self.keys_for(&app)? {
                Some(keys) => match ece::decrypt(&keys.key, &keys.auth, &body) {
                    Ok(plain) => plain,
                    Err(e) => return Ok(Err(format!("for {app:?}, it {e}"))),
                },
                // Not registered here: opaque bytes, handed on as they came.
                None => body,
            }
        } else if let Some(text) = json::string(raw) {
            text.into_bytes()
        } else {
            raw.as_bytes().to_vec()
        };
        Ok(Ok(Message {
            id,
            app,
            urgency,
            plaintext,
        }))
    }

    /// Hands a message to CMD or stdout; `Ok(Err(why))` if CMD failed.
    fn deliver(&self, m: &Message) -> Result<Result<(), String>, Failure> {
        let id = m.id.map(|id| id.to_string()).unwrap_or_default();
        let Some(cmd) = &self.exec else {
            let mut line = format!(
                "{{\"id\":{},\"app\":{},\"urgency\":{},",
                m.id.map_or_else(|| "null".to_owned(), |id| id.to_string()),
                json::quote(&m.app),
                json::quote(&m.urgency)
            );
            match std::str::from_utf8(&m.plaintext) {
                Ok(text) => line.push_str(&format!("\"data\":{}}}", json::quote(text))),
                Err(_) => line.push_str(&format!(
                    "\"data\":\"{}\",\"encoding\":\"base64\"}}",
                    base64::encode(&m.plaintext)
                )),
            }
            let mut out = io::stdout().lock();
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(|e| Failure::runtime(format!("cannot write to stdout: {e}")))?;
            return Ok(Ok(()));
        };
        let mut child = match Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("OPENPUSH_APP", &m.app)
            .env("OPENPUSH_ID", &id)
            .env("OPENPUSH_URGENCY", &m.urgency)
            .stdin(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return Ok(Err(format!("cannot run sh: {e}"))),
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A CMD that does not read its input closes the pipe early: not a failure.
            let _ = stdin.write_all(&m.plaintext);
        }
        match child.wait() {
            Ok(status) if status.success() => Ok(Ok(())),
            Ok(status) => Ok(Err(format!("--exec {status}"))),
            Err(e) => Ok(Err(format!("waiting for --exec: {e}"))),
        }
    }
}

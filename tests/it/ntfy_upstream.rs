//! iPhones through ntfy's upstream server (`upstream_base_url`), against the real binary and
//! a stand-in upstream over TLS with the test CA: each ntfy message sends exactly the poll
//! request ntfy's server sends (the hash of the topic URL, `X-Poll-ID`, no body, nothing of
//! the message), and the iPhone's poll by id gets that message alone. A slow or unreachable
//! upstream never delays a publish or the other subscribers; a certificate the CA file does
//! not vouch for is refused; the queue drops past its bound, with a log line and a metric;
//! failed tries are retried; bad settings stop the start with the reason.

use crate::support;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use support::push::{JsonStream, Obj};
use support::{Server, TIMEOUT, basic, stderr, tls_fixture, wait_until};

const PUBLIC_URL: &str = "https://push.example.org";
const TOKEN: &str = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2";
/// What the ntfy iOS app sends when it polls.
const IOS_AGENT: &str = "ntfy/1.3 (build 4; iOS 17.4.1)";

// ---------------------------------------------------------------------------------------
// The stand-in upstream: an HTTPS server that records each request as it came.

/// One request as the stand-in read it.
#[derive(Debug)]
struct Seen {
    /// The request line and the header lines, as sent.
    lines: Vec<String>,
    body: Vec<u8>,
    raw: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.lines[1..].iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lines[1..]
            .iter()
            .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
            .collect();
        names.sort();
        names
    }
}

#[derive(Default)]
struct Behaviour {
    /// Statuses of the next answers; 200 once they are used up.
    statuses: VecDeque<u16>,
    /// While set, requests are read and recorded but not answered.
    hold: bool,
}

struct StandIn {
    addr: SocketAddr,
    seen: mpsc::Receiver<Seen>,
    behaviour: Arc<(Mutex<Behaviour>, Condvar)>,
    connections: Arc<AtomicUsize>,
}

impl StandIn {
    /// An upstream on 127.0.0.1 serving the fixture certificate `name`.
    fn start(name: &str) -> StandIn {
        let chain = CertificateDer::pem_file_iter(tls_fixture(&format!("{name}.crt")))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(tls_fixture(&format!("{name}.key"))).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::channel();
        let behaviour = Arc::new((Mutex::new(Behaviour::default()), Condvar::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (b, c) = (behaviour.clone(), connections.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming().map_while(Result::ok) {
                c.fetch_add(1, Ordering::SeqCst);
                let (config, tx, b) = (config.clone(), tx.clone(), b.clone());
                std::thread::spawn(move || serve(tcp, config, &tx, &b));
            }
        });
        StandIn {
            addr,
            seen,
            behaviour,
            connections,
        }
    }

    fn base_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        let (lock, wake) = &*self.behaviour;
        change(&mut lock.lock().unwrap());
        wake.notify_all();
    }

    fn next_within(&self, wait: Duration) -> Option<Seen> {
        self.seen.recv_timeout(wait).ok()
    }

    fn next(&self) -> Seen {
        self.next_within(TIMEOUT).expect("a poll request upstream")
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.set(|b| b.hold = false);
    }
}

/// Serves one connection: reads each request, records it and answers as told.
fn serve(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    seen: &mpsc::Sender<Seen>,
    behaviour: &(Mutex<Behaviour>, Condvar),
) {
    let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match tls.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8(buf[..end - 4].to_vec()).unwrap();
        let lines: Vec<String> = head.split("\r\n").map(str::to_owned).collect();
        let length: usize = lines
            .iter()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.parse().unwrap());
        while buf.len() < end + length {
            let mut chunk = [0u8; 4096];
            match tls.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        }
        let raw: Vec<u8> = buf.drain(..end + length).collect();
        let body = raw[end..].to_vec();
        let _ = seen.send(Seen { lines, body, raw });
        let (lock, wake) = behaviour;
        let status = {
            let mut b = wake.wait_while(lock.lock().unwrap(), |b| b.hold).unwrap();
            b.statuses.pop_front().unwrap_or(200)
        };
        let answer = r#"{"id":"Xq3Zm","event":"poll_request","message":"New message"}"#;
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if tls
            .write_all(reply.as_bytes())
            .and_then(|()| tls.flush())
            .is_err()
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server and the clients.

/// A server whose poll requests go to `upstream`, with the user alice; her auth header.
fn server(name: &str, upstream: &str, extra: &str) -> (Server, String) {
    let config = format!(
        "public_url = {PUBLIC_URL}\nupstream_base_url = {upstream}\nupstream_ca_file = {}\n{extra}",
        tls_fixture("ca.crt").display()
    );
    let s = Server::start_with(name, &config);
    s.add_user("alice", "apw");
    (s, basic("alice", "apw"))
}

/// Publishes `text` to `topic` and returns the message's id; the answer must come within
/// a second, whatever the upstream does.
fn publish(s: &Server, auth: &str, topic: &str, text: &str) -> String {
    let started = Instant::now();
    let r = s.request(
        "POST",
        &format!("/{topic}"),
        &[("Authorization", auth)],
        text,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a publish took {:?}",
        started.elapsed()
    );
    Obj::parse(&r.text()).str("id").to_owned()
}

/// The hex SHA-256 of `text`, as coreutils computes it.
fn sha256_hex(text: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// Waits until the metric `sample` is `want`.
fn wait_metric(s: &Server, sample: &str, want: u64) {
    wait_until(&format!("{sample} at {want}"), || {
        s.find_metric(sample) == Some(want)
    });
}

const SENT: &str = "openpush_upstream_poll_requests_total{result=\"sent\"}";
const FAILED: &str = "openpush_upstream_poll_requests_total{result=\"failed\"}";
const DROPPED: &str = "openpush_upstream_poll_requests_total{result=\"dropped\"}";

/// What the ntfy iOS app reads when it polls for the message a poll request named: the
/// whole body, which it decodes as one JSON object.
fn ios_poll(s: &Server, auth: &str, topic: &str, id: &str) -> String {
    let r = s.request(
        "GET",
        &format!("/{topic}/json?poll=1&id={id}"),
        &[("Authorization", auth), ("User-Agent", IOS_AGENT)],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_message_sends_ntfys_poll_request_and_the_iphone_polls_that_message() {
    let upstream = StandIn::start("first");
    let extra = format!("upstream_access_token = {TOKEN}");
    let (s, alice) = server("upstream-poll", &upstream.base_url(), &extra);
    let first = publish(&s, &alice, "family", "Dinner is ready");
    let seen = upstream.next();
    let hash = sha256_hex(&format!("{PUBLIC_URL}/family"));
    assert_eq!(seen.lines[0], format!("POST /{hash} HTTP/1.1"));
    assert_eq!(
        seen.header_names(),
        [
            "authorization",
            "content-length",
            "host",
            "user-agent",
            "x-poll-id"
        ]
    );
    let port = upstream.addr.port();
    assert_eq!(
        seen.header("Host"),
        Some(format!("localhost:{port}").as_str())
    );
    assert!(seen.header("User-Agent").unwrap().starts_with("ntfy/"));
    assert_eq!(seen.header("X-Poll-ID"), Some(first.as_str()));
    assert_eq!(
        seen.header("Authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(seen.header("Content-Length"), Some("0"));
    assert!(seen.body.is_empty());
    let raw = String::from_utf8_lossy(&seen.raw);
    for private in ["family", "Dinner", "alice", "apw", "push.example.org"] {
        assert!(!raw.contains(private), "{private:?} went upstream: {raw}");
    }

    let second = publish(&s, &alice, "family", "Homework first");
    assert_eq!(upstream.next().header("X-Poll-ID"), Some(second.as_str()));
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        1,
        "one kept connection"
    );
    wait_metric(&s, SENT, 2);

    for (id, text) in [(&first, "Dinner is ready"), (&second, "Homework first")] {
        let body = ios_poll(&s, &alice, "family", id);
        assert_eq!(body.matches('\n').count(), 1, "one JSON object: {body:?}");
        let message = Obj::parse(body.trim_end());
        assert_eq!(
            (message.str("id"), message.str("message")),
            (id.as_str(), text)
        );
        assert_eq!(message.event(), "message");
    }
    assert_eq!(ios_poll(&s, &alice, "family", "op999"), "");
    assert_eq!(ios_poll(&s, &alice, "family", "Xq3ZmAbc81Pd"), "");
    let by_header = JsonStream::open(
        s.addr,
        "/family/json?poll=1",
        &[("Authorization", &alice), ("X-ID", &second)],
    )
    .lines_until_closed();
    assert_eq!(by_header.len(), 1, "{by_header:?}");
    assert_eq!(Obj::parse(&by_header[0]).str("id"), second);
}

#[test]
fn a_delayed_message_sends_its_poll_request_when_it_is_sent_and_clear_or_delete_none() {
    let upstream = StandIn::start("first");
    let (s, alice) = server(
        "upstream-delayed",
        &upstream.base_url(),
        "min_delay_secs = 0",
    );
    let r = s.request(
        "PUT",
        "/family",
        &[("Authorization", &alice), ("In", "1s")],
        "Dinner in a second",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        upstream.next_within(Duration::from_millis(600)).is_none(),
        "nothing upstream before it is sent"
    );
    let seen = upstream.next();
    let id = seen.header("X-Poll-ID").unwrap().to_owned();
    let body = ios_poll(&s, &alice, "family", &id);
    let message = Obj::parse(body.trim_end());
    assert_eq!(message.str("message"), "Dinner in a second");
    assert_eq!(message.str("sequence_id"), Obj::parse(&r.text()).str("id"));
    for (method, path) in [
        ("PUT", format!("/family/{id}/clear")),
        ("DELETE", format!("/family/{id}")),
    ] {
        let r = s.request(method, &path, &[("Authorization", &alice)], "");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(upstream.next_within(Duration::from_millis(500)).is_none());
    wait_metric(&s, SENT, 1);
}

#[test]
fn unifiedpush_messages_and_poll_requests_send_no_poll_request() {
    let upstream = StandIn::start("first");
    let (s, alice) = server("upstream-up", &upstream.base_url(), "");
    let r = s.request("POST", "/upAbCdEf123456", &[], "encrypted");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s.request("POST", "/chat?up=1", &[("Authorization", &alice)], "x");
    assert_eq!(r.status, 201, "{}", r.text());
    // Another server's poll request is not sent on (two servers naming each other).
    let poll_request = [
        ("Authorization", alice.as_str()),
        ("X-Poll-ID", "s4PdJozxM8na"),
    ];
    assert_eq!(s.request("POST", "/family", &poll_request, "").status, 200);
    let last = publish(&s, &alice, "family", "only this one");
    assert_eq!(upstream.next().header("X-Poll-ID"), Some(last.as_str()));
    assert!(upstream.next_within(Duration::from_millis(300)).is_none());
}

#[test]
fn a_slow_upstream_never_delays_publishing_or_the_other_subscribers() {
    let upstream = StandIn::start("first");
    upstream.set(|b| b.hold = true);
    let (s, alice) = server("upstream-slow", &upstream.base_url(), "");
    let mut live = JsonStream::open(s.addr, "/family/json", &[("Authorization", &alice)]);
    assert_eq!(live.open_event().event(), "open");
    let started = Instant::now();
    for n in 0..20 {
        let id = publish(&s, &alice, "family", &format!("message {n}"));
        let got = live.message();
        assert_eq!(
            (got.str("id"), got.str("message")),
            (id.as_str(), &*format!("message {n}"))
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The forwarder waits on the first one's answer all the while.
    assert!(upstream.next().header("X-Poll-ID").is_some());
    assert!(upstream.next_within(Duration::from_millis(200)).is_none());
    upstream.set(|b| b.hold = false);
    for _ in 1..20 {
        upstream.next();
    }
    wait_metric(&s, SENT, 20);
}

#[test]
fn an_unreachable_upstream_is_retried_then_given_up_with_a_log_line() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("https://127.0.0.1:{}", closed.port());
    let (s, alice) = server("upstream-down", &url, "upstream_retries = 1");
    let started = Instant::now();
    let id = publish(&s, &alice, "family", "still stored");
    assert!(started.elapsed() < Duration::from_secs(1));
    let line = s.wait_log(&format!("poll request for message {id} not sent"));
    assert!(
        line.contains("tries: 2") && line.contains("cannot connect"),
        "{line}"
    );
    assert!(!line.contains("family"), "{line}");
    assert_eq!(s.find_metric(FAILED), Some(1));
    assert_eq!(s.find_metric("openpush_upstream_retries_total"), Some(1));
    let polled = ios_poll(&s, &alice, "family", &id);
    assert_eq!(Obj::parse(polled.trim_end()).str("message"), "still stored");
}

#[test]
fn a_failed_try_is_tried_again_after_a_pause() {
    let upstream = StandIn::start("first");
    upstream.set(|b| b.statuses.extend([503, 502]));
    let (s, alice) = server("upstream-retry", &upstream.base_url(), "");
    let id = publish(&s, &alice, "family", "third time lucky");
    let tries: Vec<(Instant, Seen)> = (0..3)
        .map(|_| {
            let seen = upstream.next();
            (Instant::now(), seen)
        })
        .collect();
    for (_, seen) in &tries {
        assert_eq!(seen.header("X-Poll-ID"), Some(id.as_str()));
    }
    // 1 s, then 2 s between the tries.
    assert!(tries[2].0 - tries[0].0 >= Duration::from_millis(2500));
    wait_metric(&s, SENT, 1);
    assert_eq!(s.find_metric("openpush_upstream_retries_total"), Some(2));
    assert_eq!(s.find_metric(FAILED), Some(0));
}

#[test]
fn a_refusal_is_not_retried_and_429_says_how_to_get_higher_limits() {
    let upstream = StandIn::start("first");
    upstream.set(|b| b.statuses.extend([429, 403]));
    let (s, alice) = server("upstream-refused", &upstream.base_url(), "");
    let first = publish(&s, &alice, "family", "one");
    let line = s.wait_log(&format!("poll request for message {first} not sent"));
    assert!(
        line.contains("429") && line.contains("upstream_access_token"),
        "{line}"
    );
    let second = publish(&s, &alice, "family", "two");
    let line = s.wait_log(&format!("poll request for message {second} not sent"));
    assert!(line.contains("tries: 1") && line.contains("403"), "{line}");
    assert_eq!(upstream.next().header("X-Poll-ID"), Some(first.as_str()));
    assert_eq!(upstream.next().header("X-Poll-ID"), Some(second.as_str()));
    assert!(upstream.next_within(Duration::from_millis(200)).is_none());
    assert_eq!(s.find_metric(FAILED), Some(2));
}

#[test]
fn a_certificate_the_ca_file_does_not_vouch_for_is_refused() {
    let upstream = StandIn::start("stranger");
    let (s, alice) = server("upstream-stranger", &upstream.base_url(), "");
    let id = publish(&s, &alice, "family", "not for strangers");
    let line = s.wait_log(&format!("poll request for message {id} not sent"));
    assert!(
        line.contains("certificate refused") && line.contains("tries: 1"),
        "{line}"
    );
    assert_eq!(s.find_metric(FAILED), Some(1));
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
    assert!(
        upstream.next_within(Duration::from_millis(200)).is_none(),
        "nothing sent"
    );
}

#[test]
fn the_queue_holds_at_most_upstream_queue_and_drops_the_rest() {
    let upstream = StandIn::start("first");
    upstream.set(|b| b.hold = true);
    let extra = "upstream_queue = 2\nupstream_timeout_secs = 60";
    let (s, alice) = server("upstream-queue", &upstream.base_url(), extra);
    let first = publish(&s, &alice, "family", "0");
    assert_eq!(upstream.next().header("X-Poll-ID"), Some(first.as_str()));
    let ids: Vec<String> = (1..10)
        .map(|n| publish(&s, &alice, "family", &n.to_string()))
        .collect();
    let line = s.wait_log("upstream queue full");
    assert!(line.contains("2 poll requests waiting"), "{line}");
    assert_eq!(s.find_metric(DROPPED), Some(7));
    upstream.set(|b| b.hold = false);
    for id in &ids[..2] {
        assert_eq!(upstream.next().header("X-Poll-ID"), Some(id.as_str()));
    }
    assert!(upstream.next_within(Duration::from_millis(500)).is_none());
    wait_metric(&s, SENT, 3);
    let all = JsonStream::open(s.addr, "/family/json?poll=1", &[("Authorization", &alice)])
        .lines_until_closed();
    assert_eq!(all.len(), 10, "every message stays stored");
}

#[test]
fn a_reload_turns_the_poll_requests_on() {
    let upstream = StandIn::start("first");
    let s = Server::start_with("upstream-reload", &format!("public_url = {PUBLIC_URL}"));
    s.add_user("alice", "apw");
    let alice = basic("alice", "apw");
    assert_eq!(
        s.find_metric(SENT),
        None,
        "no upstream metric while it is off"
    );
    publish(&s, &alice, "family", "before");
    let mut config = std::fs::read_to_string(&s.config).unwrap();
    config.push_str(&format!(
        "upstream_base_url = {}\nupstream_ca_file = {}\n",
        upstream.base_url(),
        tls_fixture("ca.crt").display()
    ));
    std::fs::write(&s.config, config).unwrap();
    s.reload();
    s.wait_log("poll requests for iPhones go to");
    let after = publish(&s, &alice, "family", "after");
    assert_eq!(upstream.next().header("X-Poll-ID"), Some(after.as_str()));
    assert!(upstream.next_within(Duration::from_millis(200)).is_none());
}

#[test]
fn bad_upstream_settings_stop_the_start_with_the_reason() {
    let dir = support::temp_dir("upstream-bad");
    let ca = tls_fixture("ca.crt");
    let cases = [
        (
            "upstream_base_url = https://ntfy.sh".to_owned(),
            "upstream_base_url needs public_url",
        ),
        (
            format!("public_url = {PUBLIC_URL}\nupstream_base_url = http://ntfy.sh"),
            "HTTPS only",
        ),
        (
            format!("public_url = {PUBLIC_URL}\nupstream_base_url = {PUBLIC_URL}"),
            "upstream_base_url is public_url",
        ),
        (
            format!(
                "public_url = {PUBLIC_URL}\nupstream_base_url = https://ntfy.sh\nupstream_ca_file = {}",
                dir.join("missing.crt").display()
            ),
            "upstream_ca_file",
        ),
        (
            format!(
                "public_url = {PUBLIC_URL}\nupstream_base_url = https://ntfy.sh\nupstream_ca_file = {}",
                tls_fixture("first.key").display()
            ),
            "no PEM certificate",
        ),
        (
            format!(
                "upstream_access_token = tk secret\nupstream_ca_file = {}",
                ca.display()
            ),
            "upstream_access_token",
        ),
    ];
    for (settings, expected) in cases {
        let config = dir.join("openpush.conf");
        let db = dir.join("openpush.redb");
        std::fs::write(&config, format!("db = {}\n{settings}\n", db.display())).unwrap();
        let out = support::cli(&config, &["serve", "--listen", "127.0.0.1:0"], "");
        assert!(!out.status.success(), "started with {settings:?}");
        assert!(
            stderr(&out).contains(expected),
            "{expected:?} not in {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("tk secret"), "{}", stderr(&out));
    }
}

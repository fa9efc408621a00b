//! Built-in TLS (`listen_tls`): every kind of request and stream over it, the certificate
//! read again on SIGHUP and when its files change (open streams stay), a bad certificate
//! refused at start and kept out at reload, and what a client that does not speak TLS gets.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use support::{Response, Server, parse_response, stderr, tls_fixture};

/// A server with a TLS listener on `name`'s certificate, copied into a directory where the
/// test may replace it: the server, the listener's address, the directory.
fn start(test: &str, name: &str, extra: &str) -> (Server, SocketAddr, PathBuf) {
    let dir = support::temp_dir(&format!("{test}-certs"));
    install(&dir, name);
    let config = format!(
        "listen_tls = 127.0.0.1:0\ntls_cert = {}\ntls_key = {}\n{extra}",
        dir.join("server.crt").display(),
        dir.join("server.key").display()
    );
    let server = Server::start_with(test, &config);
    let line = server.wait_log("listening on https://");
    let addr = line
        .split("https://")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (server, addr, dir)
}

/// Puts `name`'s certificate and key in `dir` as the server's.
fn install(dir: &Path, name: &str) {
    for ext in ["crt", "key"] {
        let to = dir.join(format!("server.{ext}"));
        std::fs::copy(tls_fixture(&format!("{name}.{ext}")), &to).unwrap();
    }
}

fn client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls_fixture("ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS client connection that checks the server's certificate against the test CA.
struct Client {
    tls: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(client_config(), name).unwrap();
        Client {
            tls: StreamOwned::new(conn, tcp),
            buf: Vec::new(),
        }
    }

    /// Sends a client's text frame (masked with a zero key, which leaves the payload as is).
    fn send_text(&mut self, text: &str) {
        assert!(text.len() < 126);
        let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(text.as_bytes());
        self.tls.write_all(&frame).unwrap();
        self.tls.flush().unwrap();
    }

    fn send(&mut self, raw: &str) {
        self.tls.write_all(raw.as_bytes()).unwrap();
        self.tls.flush().unwrap();
    }

    /// Reads until `done` holds for what came so far, or `wait` passes.
    fn read_until(&mut self, wait: Duration, done: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        let mut chunk = [0u8; 16384];
        while !done(&self.buf) {
            if Instant::now() > deadline {
                return false;
            }
            match self.tls.read(&mut chunk) {
                Ok(0) => return done(&self.buf),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("TLS read: {e}"),
            }
        }
        true
    }

    /// Reads until the text holds `needle`.
    fn expect(&mut self, needle: &str) {
        let found = self.read_until(Duration::from_secs(10), |b| {
            String::from_utf8_lossy(b).contains(needle)
        });
        assert!(
            found,
            "no {needle:?} in {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    fn response(&mut self) -> Response {
        self.read_until(Duration::from_secs(10), |b| parse_response(b).is_some());
        let response = parse_response(&self.buf).expect("a whole response");
        self.buf.clear();
        response
    }

    /// The first certificate the server presented.
    fn certificate(&self) -> Vec<u8> {
        self.tls.conn.peer_certificates().unwrap()[0].to_vec()
    }
}

fn request(addr: SocketAddr, raw: &str) -> (Response, Client) {
    let mut client = Client::connect(addr);
    client.send(raw);
    let response = client.response();
    (response, client)
}

fn leaf(name: &str) -> Vec<u8> {
    CertificateDer::pem_file_iter(tls_fixture(&format!("{name}.crt")))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Waits until new connections to `tls` are served `name`'s certificate.
fn wait_for_certificate(tls: SocketAddr, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = "GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    while request(tls, health).1.certificate() != leaf(name) {
        assert!(
            Instant::now() < deadline,
            "{name}'s certificate was not served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn requests_streams_and_websockets_work_over_tls() {
    let (server, tls, _) = start("tls-doors", "first", "anonymous_access = read-write");

    // A plain request, with ALPN and the certificate as the client checks them.
    let (health, client) = request(tls, "GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(client.tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(client.certificate(), leaf("first"));

    // Keep-alive: several requests on one TLS connection, a body among them.
    let mut client = Client::connect(tls);
    for n in 0..3 {
        let body = format!("keep-alive {n}");
        client.send(&format!(
            "POST /alerts HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        let r = client.response();
        assert_eq!(r.status, 200, "{}", r.text());
    }

    // An ntfy JSON stream over TLS gets what is published over plain HTTP, and the
    // cached messages first.
    let mut stream = Client::connect(tls);
    stream.send("GET /alerts/json?since=all HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.expect("keep-alive 2");
    let posted = support::request(server.addr, "POST", "/alerts", &[], "over the top");
    assert_eq!(posted.status, 200);
    stream.expect("over the top");

    // The OpenPush SSE stream of a device, with Basic auth over TLS.
    let (key, token) = server.device("alice");
    let mut sse = Client::connect(tls);
    sse.send(&format!(
        "GET /subscribe HTTP/1.1\r\nHost: localhost\r\nX-Openpush-Key: {key}\r\nAccept: text/event-stream\r\n\r\n"
    ));
    sse.expect("200 OK");
    let sent = server.post_message(&format!(
        "{{\"token\":\"{token}\",\"data\":{{\"text\":\"tls event\"}}}}"
    ));
    assert!(sent.status < 300, "{}", sent.text());
    sse.expect("tls event");

    // A WebSocket upgrade over TLS (ntfy's /ws).
    let mut ws = Client::connect(tls);
    ws.send(
        "GET /alerts/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    ws.expect("101 Switching Protocols");
    ws.expect("\"open\"");
    support::request(server.addr, "POST", "/alerts", &[], "to the socket");
    ws.expect("to the socket");

    // autopush over TLS (Firefox's WebSocket): the endpoint it hands out is https://.
    let mut agent = Client::connect(tls);
    agent.send(&format!(
        "GET / HTTP/1.1\r\nHost: localhost:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        tls.port()
    ));
    agent.expect("101 Switching Protocols");
    agent.send_text(r#"{"messageType":"hello","use_webpush":true}"#);
    agent.expect("\"uaid\"");
    agent.send_text(
        r#"{"messageType":"register","channelID":"5e5b2e8a-7c0f-4b8e-9a55-6a0f3d5f0c11"}"#,
    );
    agent.expect(&format!(
        "\"pushEndpoint\":\"https://localhost:{}/",
        tls.port()
    ));
}

#[test]
fn a_renewed_certificate_serves_new_connections_and_open_streams_stay() {
    let (server, tls, dir) = start(
        "tls-reload",
        "first",
        "anonymous_access = read-write\ntls_cert_check_secs = 1",
    );
    let mut stream = Client::connect(tls);
    stream.send("GET /renewals/json HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.expect("\"open\"");
    assert_eq!(stream.certificate(), leaf("first"));

    // Renewed on disk: picked up by the file check, without a signal.
    install(&dir, "second");
    wait_for_certificate(tls, "second");
    server.wait_log("TLS certificate reloaded");
    support::request(server.addr, "POST", "/renewals", &[], "still here");
    stream.expect("still here");

    // A broken renewal (the key of another certificate) keeps the one in use.
    std::fs::copy(tls_fixture("first.key"), dir.join("server.key")).unwrap();
    server.wait_log("TLS certificate not reloaded, the old one stays");
    let (health, client) = request(tls, "GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(health.status, 200);
    assert_eq!(client.certificate(), leaf("second"));

    // SIGHUP loads it again, here an RSA certificate with a PKCS#1 key.
    install(&dir, "rsa");
    server.reload();
    wait_for_certificate(tls, "rsa");
    support::request(server.addr, "POST", "/renewals", &[], "after the signal");
    stream.expect("after the signal");
}

#[test]
fn a_missing_or_broken_certificate_stops_the_start_with_a_clear_error() {
    let dir = support::temp_dir("tls-broken");
    let db = dir.join("openpush.redb");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let cases = [
        (
            format!(
                "tls_cert = {}\ntls_key = {}",
                dir.join("missing.crt").display(),
                tls_fixture("first.key").display()
            ),
            "cannot read",
        ),
        (
            format!(
                "tls_cert = {}\ntls_key = {}",
                garbage.display(),
                tls_fixture("first.key").display()
            ),
            "no PEM certificate",
        ),
        (
            format!(
                "tls_cert = {}\ntls_key = {}",
                tls_fixture("first.crt").display(),
                garbage.display()
            ),
            "no PEM private key",
        ),
        (
            format!(
                "tls_cert = {}\ntls_key = {}",
                tls_fixture("first.crt").display(),
                tls_fixture("second.key").display()
            ),
            "first.crt",
        ),
        (String::new(), "listen_tls needs tls_cert and tls_key"),
    ];
    for (files, expected) in cases {
        let config = dir.join("openpush.conf");
        std::fs::write(
            &config,
            format!("db = {}\nlisten_tls = 127.0.0.1:0\n{files}\n", db.display()),
        )
        .unwrap();
        let out = support::cli(&config, &["serve", "--listen", "127.0.0.1:0"], "");
        assert!(!out.status.success(), "started with {files:?}");
        assert!(
            stderr(&out).contains(expected),
            "{expected:?} not in {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_client_that_does_not_speak_tls_is_closed_and_others_go_on() {
    let (server, tls, _) = start("tls-plain-client", "first", "");
    let mut plain = TcpStream::connect(tls).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("200"),
        "{answer:?}"
    );
    // A TLS alert, or nothing: never an HTTP answer in the clear.
    assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");

    let (health, _) = request(tls, "GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(health.status, 200);
    let _ = server;
}

#[test]
fn curl_reaches_the_tls_listener() {
    let (server, tls, _) = start("tls-curl", "first", "anonymous_access = read-write");
    let url = format!("https://localhost:{}/curl", tls.port());
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(tls_fixture("ca.crt"))
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", tls.port())])
        .args(["-d", "from curl", &url])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("from curl"));
    let polled = support::request(server.addr, "GET", "/curl/json?poll=1", &[], "");
    assert!(polled.text().contains("from curl"), "{}", polled.text());
}

//! The TLS side of the bench: a rustls client (ring, TLS 1.2 and 1.3, ALPN `http/1.1`) that
//! trusts one CA file, over the same sockets as the plain runs. Subscribers hold their
//! connection open and idle once the handshake is done and the response head is read
//! ([`crate::subs`]); `handshakes` opens a connection per request and measures the server's
//! CPU time per connection, over TLS or plain.
//!
//! Only 127.0.0.0/8 is ever connected to; the run is bounded by a count and a deadline.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore};

use crate::{procstat, wire};

/// A client configuration trusting the certificates of `ca_path` (PEM); `resume`: keep
/// sessions (256, rustls' default) and offer them again to the same server name; `kx`: the
/// key exchange group offered first, whose key share the ClientHello carries (`x25519`, as
/// phones' TLS stacks and browsers send, `p256` or `p384`).
pub fn client_config(ca_path: &str, resume: bool, kx: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_path).expect("read the --tls-ca file") {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a CA certificate");
    }
    // The server's provider (ring builds for MIPS); it has no post-quantum key exchange.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    // ring's default order starts with P-384; a server answers the group the client prefers.
    let first = match kx {
        "x25519" => X25519,
        "p256" => SECP256R1,
        "p384" => SECP384R1,
        k => panic!("--kx {k}: x25519, p256 or p384"),
    };
    provider.kx_groups.retain(|g| g.name() != first.name());
    provider.kx_groups.insert(0, first);
    let provider = Arc::new(provider);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

/// What subscribers over TLS connect with: the configuration and the name the server's
/// certificate is checked against (`localhost` for tests/fixtures/tls).
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

impl Tls {
    pub fn new(ca_path: &str, name: &str, resume: bool, kx: &str) -> Tls {
        Tls {
            config: client_config(ca_path, resume, kx),
            name: ServerName::try_from(name.to_owned()).expect("--sni: a DNS name or an IP"),
        }
    }

    pub fn client(&self) -> Client {
        Client {
            tls: ClientConnection::new(self.config.clone(), self.name.clone()).expect("TLS client"),
        }
    }
}

/// One TLS connection over a socket the caller owns (blocking or not): plaintext in and out.
pub struct Client {
    pub tls: ClientConnection,
}

impl Client {
    /// Plaintext the server sent: `WouldBlock` when a non-blocking socket has nothing more,
    /// `Ok(0)` at the end of the stream.
    pub fn read<S: Read + Write>(&mut self, sock: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(sock) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    self.tls
                        .process_new_packets()
                        .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
                    // The handshake's answers (and a request queued behind it) go out now.
                    self.flush(sock)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues `data` (before the handshake is done: until it is) and sends what can be sent.
    pub fn write_all<S: Write>(&mut self, sock: &mut S, data: &[u8]) -> io::Result<()> {
        self.tls.writer().write_all(data)?;
        self.flush(sock)
    }

    /// Sends queued records. The bench's requests and handshake messages are far below a
    /// socket buffer, so a non-blocking socket takes them whole.
    pub fn flush<S: Write>(&mut self, sock: &mut S) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(sock) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// `openpush-bench handshakes`: `--conns` connections, each one request (`GET --path`,
/// `Connection: close`) and its answer, from `--threads` threads; over TLS with `--tls-ca`,
/// else plain. Prints one JSON line: the server's CPU time per connection.
pub fn handshakes(get: &dyn Fn(&str, &str) -> String, pids: &[u32]) {
    procstat::raise_nofile();
    let dest: SocketAddr = get("addr", "127.0.0.1:8443").parse().expect("--addr");
    wire::check_loopback(&dest);
    let n: usize = get("conns", "2000").parse().expect("--conns");
    let threads: usize = get("threads", "2").parse().expect("--threads");
    let path = get("path", "/v1/health");
    let ca = get("tls-ca", "");
    let resume = get("resume", "0") == "1";
    let max_secs: f64 = get("max-secs", "300").parse().expect("--max-secs");
    let label = get("label", if ca.is_empty() { "plain" } else { "tls" });
    let kx = get("kx", "x25519");
    let tls = (!ca.is_empty()).then(|| Tls::new(&ca, &get("sni", "localhost"), resume, &kx));
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");

    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let resumed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let suite: Arc<Mutex<String>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs_f64(max_secs);
    let before = procstat::sample(pids);
    let before_by_pid = procstat::per_pid_json("before_by_pid", pids);
    let t0 = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (next, ok, errors, resumed, stop, suite, tls, req) = (
                next.clone(),
                ok.clone(),
                errors.clone(),
                resumed.clone(),
                stop.clone(),
                suite.clone(),
                tls.clone(),
                req.clone(),
            );
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= n || stop.load(Relaxed) {
                    break;
                }
                if Instant::now() > deadline {
                    stop.store(true, Relaxed);
                    break;
                }
                match one(i, dest, tls.as_ref(), req.as_bytes()) {
                    Ok(info) => {
                        ok.fetch_add(1, Relaxed);
                        if info.resumed {
                            resumed.fetch_add(1, Relaxed);
                        }
                        let mut s = suite.lock().expect("lock");
                        if s.is_empty() {
                            *s = info.suite;
                        }
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Relaxed) < 3 {
                            eprintln!("connection {i}: {e}");
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("handshake thread");
    }
    let secs = t0.elapsed().as_secs_f64();
    // The server's last reads and closes.
    std::thread::sleep(Duration::from_millis(300));
    let after = procstat::sample(pids);
    let after_by_pid = procstat::per_pid_json("after_by_pid", pids);
    let ok = ok.load(Relaxed);
    let cpu = after.cpu_secs - before.cpu_secs;
    let per = |x: f64| if ok > 0 { x / ok as f64 } else { f64::NAN };
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            "null".into()
        }
    };
    let suite = suite.lock().expect("lock").clone();
    let kx = if tls.is_some() { kx.as_str() } else { "" };
    println!(
        "{{\"label\":\"{label}\",\"mode\":\"handshakes\",\"tls\":{},\"resume\":{resume},\"conns\":{n},\"ok\":{ok},\"errors\":{},\"resumed\":{},\
\"suite\":\"{suite}\",\"kx\":\"{kx}\",\"secs\":{},\"conns_per_s\":{},\"cpu_secs\":{},\"cpu_us_per_conn\":{},\"rss_before\":{},\"rss_after\":{},\"peak_rss\":{},{before_by_pid},{after_by_pid}}}",
        tls.is_some(),
        errors.load(Relaxed),
        resumed.load(Relaxed),
        num(secs),
        num(ok as f64 / secs),
        num(cpu),
        num(per(cpu) * 1e6),
        before.rss,
        after.rss,
        after.hwm,
    );
    eprintln!(
        "{label:<36} {ok}/{n} conns ({} resumed) {suite} in {secs:.1} s: server cpu {:.0} us/conn",
        resumed.load(Relaxed),
        per(cpu) * 1e6
    );
}

struct Info {
    resumed: bool,
    suite: String,
}

/// One connection, one request, its whole answer (status 200 expected), then the close.
fn one(i: usize, dest: SocketAddr, tls: Option<&Tls>, req: &[u8]) -> io::Result<Info> {
    let mut sock = wire::connect_from(i, dest, false)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    let mut client = tls.map(Tls::client);
    match client.as_mut() {
        Some(c) => c.write_all(&mut sock, req)?,
        None => sock.write_all(req)?,
    }
    loop {
        let n = match client.as_mut() {
            Some(c) => c.read(&mut sock, &mut buf),
            None => sock.read(&mut buf),
        };
        let n = match n {
            Ok(n) => n,
            // The server may close without close_notify after `Connection: close`.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && complete(&got) => 0,
            Err(e) => return Err(e),
        };
        got.extend_from_slice(&buf[..n]);
        if n == 0 || complete(&got) {
            break;
        }
    }
    if !complete(&got) {
        return Err(io::Error::new(ErrorKind::UnexpectedEof, "answer cut short"));
    }
    if !(got.starts_with(b"HTTP/1.1 200") || got.starts_with(b"HTTP/1.0 200")) {
        let line = got.split(|&b| b == b'\r').next().unwrap_or_default();
        return Err(io::Error::other(String::from_utf8_lossy(line).into_owned()));
    }
    let info = match client.as_mut() {
        Some(c) => {
            let info = Info {
                resumed: c.tls.handshake_kind() == Some(HandshakeKind::Resumed),
                suite: format!(
                    "{} {}",
                    c.tls
                        .negotiated_cipher_suite()
                        .map(|s| format!("{:?}", s.suite()))
                        .unwrap_or_default(),
                    c.tls
                        .negotiated_key_exchange_group()
                        .map(|g| format!("{:?}", g.name()))
                        .unwrap_or_default()
                ),
            };
            c.tls.send_close_notify();
            let _ = c.flush(&mut sock);
            info
        }
        None => Info {
            resumed: false,
            suite: String::new(),
        },
    };
    Ok(info)
}

/// Whether `got` holds a whole answer: its head and `Content-Length` bytes of body.
fn complete(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    got.len() >= end + 4 + len
}

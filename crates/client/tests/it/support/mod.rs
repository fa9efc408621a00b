//! Test harness: the real `openpush` server binary on 127.0.0.1:0 with a temporary database,
//! and the real `openpush-client` binary against it.
//!
//! The server binary is the root package's, built by `cargo build` or `cargo test` at the
//! root (same target directory) before these tests run; `OPENPUSH_SERVER_BIN` overrides.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const CLIENT: &str = env!("CARGO_BIN_EXE_openpush-client");
pub const TIMEOUT: Duration = Duration::from_secs(20);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// The server binary: `<target>/debug/openpush`, beside this test's `deps/` directory.
pub fn server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("OPENPUSH_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("openpush");
    assert!(
        bin.exists(),
        "no server binary at {}: run `cargo build` at the repository root first",
        bin.display()
    );
    bin
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "client-{name}-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Server {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// A server whose config holds `config` (plus its database), with user `ann`
    /// (password `ann-secret`).
    pub fn start(name: &str, config: &str) -> Server {
        let server = Server::bare(name, config);
        let out = server.cli(&["user", "add", "ann", "--password-stdin"], "ann-secret\n");
        assert!(out.status.success(), "user add: {}", text(&out.stderr));
        server
    }

    /// A server without users, its database `openpush.redb` in its directory `dir`.
    pub fn bare(name: &str, config: &str) -> Server {
        let dir = temp_dir(name);
        let db = dir.join("openpush.redb");
        let config_path = dir.join("openpush.conf");
        std::fs::write(&config_path, format!("db = {}\n{config}\n", db.display())).unwrap();
        let (child, addr) = spawn(&config_path, "127.0.0.1:0");
        Server {
            dir,
            config: config_path,
            addr,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server with SIGKILL and starts it again on the same database and port.
    pub fn restart(&mut self) {
        self.kill9();
        let (child, addr) = spawn(&self.config, &self.addr.to_string());
        self.child = child;
        self.addr = addr;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--config", self.config.to_str().unwrap()]);
        run(Command::new(server_bin()).args(&all), stdin)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(config: &Path, listen: &str) -> (Child, SocketAddr) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut child = Command::new(server_bin())
            .args([
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                listen,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = stderr_lines(&mut child, "server");
        while let Ok(line) = rx.recv_timeout(TIMEOUT) {
            if let Some(addr) = line.split("listening on http://").nth(1) {
                return (child, addr.trim().parse().unwrap());
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        // A restart on the same port can race the old socket's release.
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command to its end with `stdin`; output captured.
pub fn run(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// Runs `openpush-client ARGS` with `stdin`.
pub fn client(args: &[&str], stdin: &str) -> Output {
    run(Command::new(CLIENT).args(args), stdin)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A device with app `app` registered through `openpush-client register` in `state`;
/// returns the subscription JSON.
pub fn register(server: &Server, state: &Path, app: &str) -> String {
    let out = client(
        &[
            "register",
            "--server",
            &server.url(),
            "--user",
            "ann",
            "--password-stdin",
            "--device",
            "laptop",
            "--app",
            app,
            "--state-dir",
            state.to_str().unwrap(),
        ],
        "ann-secret\n",
    );
    ok(&out).trim().to_owned()
}

/// `openpush-client listen` in its own process group (so a test can kill it with its
/// --exec children, as a power cut or systemd's cgroup kill would).
pub struct Listener {
    pub child: Child,
    pub log: mpsc::Receiver<String>,
    killed: bool,
}

impl Listener {
    pub fn start(state: &Path, exec: &str, extra: &[&str]) -> Listener {
        Listener::spawn(state, &["--exec", exec], extra, Stdio::null())
    }

    /// A listener without --exec: messages come as JSON lines on its stdout (piped).
    pub fn printing(state: &Path) -> Listener {
        Listener::spawn(state, &[], &[], Stdio::piped())
    }

    fn spawn(state: &Path, exec: &[&str], extra: &[&str], stdout: Stdio) -> Listener {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(CLIENT)
            .args(["listen", "--state-dir", state.to_str().unwrap()])
            .args(exec)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let rx = stderr_lines(&mut child, "client");
        Listener {
            child,
            log: rx,
            killed: false,
        }
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no client log line with {needle:?}"),
            }
        }
    }

    /// SIGKILL to the client and everything it started.
    pub fn kill9_group(&mut self) {
        if std::mem::replace(&mut self.killed, true) {
            return;
        }
        let pgid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.kill9_group();
    }
}

/// Waits until `check` holds, or panics with `what`.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines of a file, none if it does not exist.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Sends `message` encrypted to the subscription in `sub_file`; returns the `Location`
/// the server answered with, a name of the message that does not tell its id.
pub fn send_web_push(dir: &Path, sub_file: &Path, message: &str) -> String {
    let msg = dir.join("message.txt");
    std::fs::write(&msg, message).unwrap();
    let out = client(
        &[
            "send",
            "--subscription",
            sub_file.to_str().unwrap(),
            msg.to_str().unwrap(),
        ],
        "",
    );
    let stdout = ok(&out);
    assert!(stdout.starts_with("201 "), "{stdout}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .filter(|l| l.starts_with("/message/"))
        .unwrap_or_else(|| panic!("no Location in {stdout}"))
        .to_owned()
}

/// The lines `child` writes to its (piped) stderr, as they come; echoed as `who: line` when
/// `OPENPUSH_TEST_LOG` is set.
fn stderr_lines(child: &mut Child, who: &'static str) -> mpsc::Receiver<String> {
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if std::env::var_os("OPENPUSH_TEST_LOG").is_some() {
                eprintln!("{who}: {line}");
            }
            let _ = tx.send(line);
        }
    });
    rx
}

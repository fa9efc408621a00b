//! One `openpush serve` process of a test: started on `127.0.0.1:0` in a fresh directory
//! with its own database and config file, its address read back from its log, killed and
//! its directory removed when the test lets go of it. A restart keeps the database, the
//! config and the port. The server logs at `debug` to a pipe that a thread of the test
//! reads line by line into [`Server::log`] (and, with `OPENPUSH_TEST_LOG` set, to the test's
//! output).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::http::{Response, request};
use super::process::{cli, openpush_command, signal, stderr, stdout, without_service_variables};
use super::sse::Sse;
use super::{BIN, TIMEOUT, temp_dir};

pub struct Server {
    pub dir: PathBuf,
    pub db: PathBuf,
    pub config: PathBuf,
    pub addr: SocketAddr,
    child: Child,
    /// Every line the server logged since it listened (or since it started, for the
    /// [`Startup::Keep`] starts), in order, as they come.
    pub log: mpsc::Receiver<String>,
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

impl Server {
    pub fn start(name: &str) -> Server {
        Server::start_with(name, "")
    }

    /// Starts a server whose config file holds `config` (plus the db path and listen address).
    pub fn start_with(name: &str, config: &str) -> Server {
        Server::start_in(name, None, config, Startup::Drop)
    }

    /// Like [`Server::start_with`], with the open-file limit (`RLIMIT_NOFILE`, soft and
    /// hard) of the server process set to `nofile`, as `ulimit -n` would.
    pub fn start_with_nofile(name: &str, config: &str, nofile: u32) -> Server {
        Server::start_in(name, None, config, Startup::Nofile(nofile))
    }

    /// Starts a server on a copy of the database file `db_file` (e.g. a fixture), with
    /// `config` as in [`Server::start_with`]. Its `log` also holds the lines the server
    /// wrote before it listened (a schema upgrade, say).
    pub fn start_on_db(name: &str, db_file: &Path, config: &str) -> Server {
        Server::start_in(name, Some(db_file), config, Startup::Keep)
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

    /// The server process id, e.g. to read its `/proc/<pid>/status`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Restarts after a crash (kill -9), on the same database and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.respawn(Startup::Drop);
    }

    /// Restarts after a clean stop (SIGTERM): every commit so far is on disk, lazy ones
    /// (confirmations) included.
    pub fn restart_gracefully(&mut self) {
        assert!(self.terminate().success(), "a clean stop");
        self.respawn(Startup::Drop);
    }

    /// Like [`Server::restart_gracefully`], and `log` also holds the lines the new process
    /// wrote before it listened.
    pub fn restart_keeping_startup_log(&mut self) {
        assert!(self.terminate().success(), "a clean stop");
        self.respawn(Startup::Keep);
    }

    fn respawn(&mut self, startup: Startup) {
        let (child, addr, log) = spawn(&self.config, &self.addr.to_string(), startup);
        self.child = child;
        self.addr = addr;
        self.log = log;
    }

    /// Sends SIGHUP: the server reads its config file (and certificate) again.
    pub fn reload(&self) {
        signal("-HUP", self.pid());
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        signal("-TERM", self.pid());
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

    /// Runs the CLI like [`Server::cli`], which must succeed: what it printed.
    pub fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    pub fn add_user(&self, name: &str, password: &str) {
        self.cli_ok(
            &["user", "add", name, "--password-stdin"],
            &format!("{password}\n"),
        );
    }

    /// Creates a client through the CLI and returns its key.
    pub fn add_client(&self, user: &str, name: &str) -> String {
        let key = self.cli_ok(&["client", "add", "--user", user, name], "");
        key.trim().to_owned()
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

    /// Opens a stream on `path` (e.g. `/subscribe?since=3`) with extra request headers.
    pub fn subscribe_with(&self, key: &str, path: &str, headers: &[(&str, &str)]) -> Sse {
        Sse::open_with(self.addr, key, path, headers)
    }

    /// The value of a series of `/metrics` (served to loopback), named as the exposition
    /// names it: `openpush_streams`, `openpush_posts_total{result="accepted"}`.
    pub fn metric(&self, series: &str) -> u64 {
        self.find_metric(series)
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    }

    /// Like [`Server::metric`], `None` for a series `/metrics` does not have.
    pub fn find_metric(&self, series: &str) -> Option<u64> {
        let r = self.request("GET", "/metrics", &[], "");
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.trim().parse().expect("a whole number"))
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

    /// Every line logged until now: a marker request (refused, so logged at `debug`) is
    /// sent, and the lines are read up to its own, however long the log takes to come.
    pub fn log_until_now(&self) -> Vec<String> {
        const MARKER: &str = "/user/log-marker";
        self.request("GET", MARKER, &[], "").assert_error(401);
        let deadline = Instant::now() + TIMEOUT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(MARKER) => return lines,
                Ok(line) => lines.push(line),
                Err(_) => panic!("the marker request was not logged; before it: {lines:#?}"),
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

/// Starts `openpush serve` with `config` on `listen` and reads its log until it listens:
/// the process, the address it listens on and the rest of its log.
fn spawn(
    config: &Path,
    listen: &str,
    startup: Startup,
) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let args = [
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        listen,
        "--log-level",
        "debug",
    ];
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut command = match startup {
            Startup::Nofile(n) => {
                // `sh -c 'ulimit -n N && exec "$0" "$@"' openpush serve …` keeps the process id.
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN])
                    .args(args);
                without_service_variables(&mut sh);
                sh
            }
            _ => openpush_command(args),
        };
        let mut child = command
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

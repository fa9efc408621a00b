//! One server under test: an `openpush serve` process at a time on one database and one
//! port of 127.0.0.1, with its config file rewritten for each phase; started, killed with
//! SIGKILL, stopped with SIGTERM and reloaded with SIGHUP. Alone, its files are
//! `openpush.conf`, `db.redb`, `server.log` and `server.pid`; as node i of a cluster
//! `node<i>.conf`, `node<i>.redb`, `node<i>.log` and `node<i>.pid`, and its config names
//! the cluster's store. The pid file lets the calling script end it if the checker dies.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::workload::PhaseCfg;

pub struct Server {
    bin: PathBuf,
    conf: PathBuf,
    db: PathBuf,
    log: PathBuf,
    pid: PathBuf,
    /// `store = …` (a cluster's Redis); None: the redb file at `db`.
    store: Option<String>,
    /// "the server", or "node i".
    pub name: String,
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl Server {
    /// The one server of a run, in `dir` on `port` of 127.0.0.1 (not started).
    pub fn single(bin: &Path, dir: &Path, port: u16) -> Server {
        Server {
            bin: bin.to_owned(),
            conf: dir.join("openpush.conf"),
            db: dir.join("db.redb"),
            log: dir.join("server.log"),
            pid: dir.join("server.pid"),
            store: None,
            name: "the server".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
        }
    }

    /// Node `i` of a cluster on the store at `store`, in `dir` on `port` (not started).
    pub fn node(bin: &Path, dir: &Path, port: u16, i: usize, store: &str) -> Server {
        Server {
            bin: bin.to_owned(),
            conf: dir.join(format!("node{i}.conf")),
            db: dir.join(format!("node{i}.redb")),
            log: dir.join(format!("node{i}.log")),
            pid: dir.join(format!("node{i}.pid")),
            store: Some(store.to_owned()),
            name: format!("node {i}"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
        }
    }

    pub fn write_config(&self, cfg: PhaseCfg) {
        let (client, topic, uaid) = if cfg.small_queues {
            (20, 30, 20)
        } else {
            (100_000, 1_000_000, 100_000)
        };
        let text = format!(
            "# written by openpush-bench check\n\
             db = {}\n\
             {}log_level = info\n\
             keepalive_secs = 10\n\
             posts_per_sec_per_token = 0\n\
             commit_window_ms = {}\n\
             confirm_delay_secs = {}\n\
             max_queued_per_client = {client}\n\
             max_queued_bytes_per_client = 1073741824\n\
             max_queued_per_topic = {topic}\n\
             max_queued_bytes_per_topic = 1073741824\n\
             max_queued_per_uaid = {uaid}\n\
             max_queued_bytes_per_uaid = 1073741824\n",
            self.db.display(),
            self.store
                .as_ref()
                .map_or(String::new(), |url| format!("store = {url}\n")),
            cfg.commit_window_ms,
            cfg.confirm_delay_secs,
        );
        let tmp = self.conf.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write the config");
        std::fs::rename(&tmp, &self.conf).expect("write the config");
    }

    /// `openpush user add NAME --password-stdin` (the server may run or not).
    pub fn add_user(&self, name: &str, password: &str) -> Result<(), String> {
        let mut child = Command::new(&self.bin)
            .args(["user", "add", name, "--password-stdin", "--config"])
            .arg(&self.conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "user add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Starts the server and waits until it listens (30 s at most).
    pub fn start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "one process per server at a time");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut child = Command::new(&self.bin)
                .args(["serve", "--config"])
                .arg(&self.conf)
                .args(["--listen", &self.addr.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("{}: {e}", self.bin.display()))?;
            let _ = std::fs::write(&self.pid, format!("{}\n", child.id()));
            let stderr = BufReader::new(child.stderr.take().expect("stderr"));
            let log_path = self.log.clone();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log_path)
                    .ok();
                let mut told = false;
                for line in stderr.lines().map_while(Result::ok) {
                    if let Some(f) = log.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    if !told && line.contains("listening on http://") {
                        told = true;
                        let _ = tx.send(());
                    }
                }
            });
            let listening = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
            if listening.is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            let _ = child.kill();
            let status = child.wait();
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not start within 30 s ({status:?}); see {}",
                    self.name,
                    self.log.display()
                ));
            }
            // A start right after a stop can race the port's release: again, shortly.
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and the wait for the exit: its time and status (after 15 s: SIGKILL, Err).
    pub fn term(&mut self) -> Result<(Duration, String), String> {
        let Some(mut c) = self.child.take() else {
            return Err(format!("{} is not running", self.name));
        };
        let t = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return Ok((t.elapsed(), status.to_string()));
            }
            if t.elapsed() > Duration::from_secs(15) {
                let _ = c.kill();
                let _ = c.wait();
                return Err(format!("{} did not stop within 15 s of SIGTERM", self.name));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn hup(&self) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGHUP) };
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// None while it runs; its exit status once it has exited by itself.
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

/// The last `lines` lines of a process's log file (empty if it cannot be read).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

//! The Redis (or Valkey) server that a cluster's nodes share: one `redis-server` on a port
//! of 127.0.0.1 with its data in `redis/`, every write on disk before it is answered
//! (`appendonly yes`, `appendfsync always`, no snapshots), its log in `redis.log` and its
//! pid in `redis.pid` (so that the calling script can end it if the checker dies). The
//! checker talks to it in RESP over a plain socket: `PING` until it answers `+PONG`, and
//! `CLIENT KILL` to drop every connection of the nodes at once (a fault: they must
//! reconnect by themselves). The checker's own connection is never one of those dropped
//! (`CLIENT KILL` with a filter skips its caller).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Starts `bin` on `port` with its files in `dir` and waits until it answers (10 s).
    pub fn start(bin: &Path, dir: &Path, port: u16) -> Result<Redis, String> {
        let data = dir.join("redis");
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let log = dir.join("redis.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(&data)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let _ = std::fs::write(dir.join("redis.pid"), format!("{}\n", child.id()));
        let mut redis = Redis {
            port,
            log,
            child: Some(child),
        };
        redis.wait_ready()?;
        Ok(redis)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.exited() {
                return Err(format!(
                    "redis-server exited at its start ({status}); {} ends:\n{}",
                    self.log.display(),
                    super::server::log_tail(&self.log, 10)
                ));
            }
            let answer = self.call(&[&["PING"]]);
            if answer.as_deref().is_ok_and(|a| a == ["+PONG"]) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill9();
                return Err(format!(
                    "redis-server did not answer PING within 10 s ({answer:?}); see {}",
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the nodes take for their store (`store = …`).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Drops every connection of the nodes (`CLIENT KILL TYPE normal`, then `pubsub`): the
    /// number of connections dropped.
    pub fn drop_clients(&self) -> Result<u64, String> {
        let answers = self.call(&[
            &["CLIENT", "KILL", "TYPE", "normal"],
            &["CLIENT", "KILL", "TYPE", "pubsub"],
        ])?;
        answers.iter().try_fold(0, |sum, a| {
            a.strip_prefix(':')
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| sum + n)
                .ok_or_else(|| format!("CLIENT KILL answered {a:?}"))
        })
    }

    /// Sends `commands` on one new connection; their answers' first lines (`+PONG`, `:3`).
    fn call(&self, commands: &[&[&str]]) -> Result<Vec<String>, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .map_err(|e| format!("redis at {addr}: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut conn = BufReader::new(sock);
        let bytes: Vec<u8> = commands.iter().flat_map(|c| resp_command(c)).collect();
        conn.get_mut()
            .write_all(&bytes)
            .map_err(|e| format!("redis at {addr}: {e}"))?;
        let mut answers = Vec::new();
        for c in commands {
            let mut line = String::new();
            conn.read_line(&mut line)
                .map_err(|e| format!("redis at {addr}: {e}"))?;
            let line = line.trim_end();
            if line.starts_with('-') || line.is_empty() {
                return Err(format!(
                    "redis at {addr}: {} answered {line:?}",
                    c.join(" ")
                ));
            }
            answers.push(line.to_owned());
        }
        Ok(answers)
    }

    /// None while it runs; its exit status once it has exited.
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

    /// SIGTERM (it syncs its append-only file and exits) and the wait: its status (after
    /// 10 s: SIGKILL, Err).
    pub fn stop(&mut self) -> Result<String, String> {
        let Some(mut c) = self.child.take() else {
            return Err("redis-server was not running".into());
        };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return Ok(status.to_string());
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = c.kill();
                let _ = c.wait();
                return Err("redis-server did not stop within 10 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A command as a RESP array of bulk strings.
fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(resp_command(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            resp_command(&["CLIENT", "KILL", "TYPE", "pubsub"]),
            b"*4\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$4\r\nTYPE\r\n$6\r\npubsub\r\n"
        );
    }

    /// Against a real redis-server (`CHECK_REDIS_SERVER`, else `redis-server` from PATH;
    /// skipped when there is none): start, PING, drop a normal and a pubsub client, stop.
    #[test]
    fn a_real_redis_starts_drops_its_clients_and_stops() {
        let bin = std::env::var("CHECK_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let dir = std::env::temp_dir().join(format!("openpush-bench-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let port = super::super::cluster::free_ports(1)[0];
        let mut redis = match Redis::start(Path::new(&bin), &dir, port) {
            Ok(r) => r,
            Err(e) if e.contains("No such file") => {
                eprintln!("skipped: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let pid: u32 = std::fs::read_to_string(dir.join("redis.pid"))
            .expect("redis.pid")
            .trim()
            .parse()
            .expect("a pid");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut normal = TcpStream::connect(addr).expect("a client");
        let mut sub = BufReader::new(TcpStream::connect(addr).expect("a subscriber"));
        sub.get_mut()
            .write_all(&resp_command(&["SUBSCRIBE", "ck"]))
            .expect("SUBSCRIBE");
        let mut line = String::new();
        sub.read_line(&mut line).expect("the SUBSCRIBE answer");
        assert_eq!(line, "*3\r\n");
        normal.write_all(&resp_command(&["PING"])).expect("PING");
        let mut pong = BufReader::new(normal.try_clone().expect("clone"));
        let mut line = String::new();
        pong.read_line(&mut line).expect("PONG");
        assert_eq!(line, "+PONG\r\n");
        assert_eq!(redis.drop_clients(), Ok(2));
        for s in [pong.get_mut(), sub.get_mut()] {
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(s, &mut rest);
        }
        assert_eq!(redis.drop_clients(), Ok(0));
        assert!(redis.stop().is_ok());
        assert!(redis.exited().is_none());
        assert!(!std::path::Path::new(&format!("/proc/{pid}/status")).exists());
        assert!(
            dir.join("redis/appendonlydir").exists() || dir.join("redis/appendonly.aof").exists()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

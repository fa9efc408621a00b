//! A `redis-server` of a test (Debian's `redis-server` package, or `$REDIS_SERVER`): started
//! on a free port of 127.0.0.1 in a fresh directory, with `appendonly yes` and
//! `appendfsync always` unless told otherwise, killed when the test lets go of it. Commands
//! go over RESP on a plain socket, so the test sees what any client sees.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Server, TIMEOUT, temp_dir};

pub struct Redis {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Child,
}

impl Redis {
    /// A server that fsyncs each write before it answers.
    pub fn start(name: &str) -> Redis {
        Redis::start_with(name, "always")
    }

    /// A server with this `appendfsync`.
    pub fn start_with(name: &str, appendfsync: &str) -> Redis {
        let dir = temp_dir(&format!("{name}-redis"));
        let program = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new(&program)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(&dir)
                .args(["--appendonly", "yes", "--appendfsync", appendfsync])
                .args(["--save", "", "--daemonize", "no", "--protected-mode", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{program}: {e} (install Debian's redis-server, or set REDIS_SERVER)")
                });
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if ping(addr) {
                    return Redis { addr, dir, child };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "redis-server did not start");
        }
    }

    /// The `store` line of a node's config.
    pub fn store(&self) -> String {
        format!("store = redis://{}/0\n", self.addr)
    }

    /// Runs one command; the reply's text as `redis-cli` would show a simple one.
    pub fn call(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(self.addr).expect("connect to redis");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(out.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        match line.as_bytes().first() {
            Some(b'$') => {
                let len: i64 = line[1..].trim().parse().unwrap();
                if len < 0 {
                    return String::new();
                }
                let mut body = vec![0; usize::try_from(len).unwrap() + 2];
                reader.read_exact(&mut body).unwrap();
                String::from_utf8_lossy(&body[..body.len() - 2]).into_owned()
            }
            _ => line[1..].trim().to_owned(),
        }
    }

    /// Starts `count` nodes on this server, each with `config` besides its `store`.
    pub fn nodes(&self, name: &str, count: usize, config: &str) -> Vec<Server> {
        (0..count)
            .map(|i| {
                Server::start_with(
                    &format!("{name}-node{i}"),
                    &format!("{}{config}", self.store()),
                )
            })
            .collect()
    }
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0; 7];
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

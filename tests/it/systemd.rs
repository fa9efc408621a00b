//! The server speaks systemd's notify protocol: READY=1 once it listens, WATCHDOG=1 while
//! its loop and store answer, STOPPING=1 on SIGTERM.

use crate::support;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{TIMEOUT, openpush_command, temp_dir};

fn wait_for(socket: &UnixDatagram, state: &str) {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf)
            && String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == state)
        {
            return;
        }
    }
    panic!("no {state} notification");
}

#[test]
fn server_notifies_ready_watchdog_and_stopping() {
    let dir = temp_dir("systemd");
    let path = dir.join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let child = openpush_command(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("db.redb"))
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .env("JOURNAL_STREAM", "8:1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&socket, "READY=1");
    wait_for(&socket, "WATCHDOG=1");
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    wait_for(&socket, "STOPPING=1");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.lines().all(|l| l.starts_with('<')),
        "journal lines carry a priority: {log}"
    );
    assert!(log.contains("<6>listening on http://127.0.0.1:"), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}

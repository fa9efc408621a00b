//! A full disk: posts are refused with 507 and a clear body, nothing half-written is ever
//! delivered, what is stored keeps being delivered, and writes resume once space frees.
//! Needs root to mount a small tmpfs (CI runs as root).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(name: &str, size: &str) -> Option<Tmpfs> {
        let dir = temp_dir(name);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[test]
fn full_disk_refuses_posts_with_507_keeps_delivering_and_recovers() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let fs = Tmpfs::mount("disk-full-fs", "2m").expect("root can mount a tmpfs");
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 512 * 1024]).unwrap();
    let server = Server::start_with(
        "disk-full",
        &format!(
            "db = {}/openpush.redb\nposts_per_sec_per_token = 0\nmax_queued_per_client = 100000",
            fs.path().display()
        ),
    );
    let (key, token) = server.device("ann");
    let pad = "p".repeat(3900);
    let post = |n: usize| {
        server.post_message(&format!(
            r#"{{"token":"{token}","data":{{"n":{n},"pad":"{pad}"}}}}"#
        ))
    };
    let mut accepted = Vec::new();
    let refused = loop {
        let r = post(accepted.len());
        if r.status != 200 {
            break r;
        }
        accepted.push(r.json_field("id").parse::<u64>().unwrap());
        assert!(accepted.len() < 2000, "the disk never filled up");
    };
    refused.assert_error(507);
    assert!(
        refused.text().contains("disk is full"),
        "{}",
        refused.text()
    );
    assert!(accepted.len() > 10, "only {} posts fit", accepted.len());

    // Everything acknowledged is delivered, nothing else.
    let mut sse = server.subscribe(&key, None);
    let mut delivered = Vec::new();
    while delivered.len() < accepted.len() {
        let e = sse
            .next_within(TIMEOUT)
            .expect("stored messages are still delivered");
        delivered.push(e.id.unwrap());
    }
    assert_eq!(delivered, accepted);
    assert!(sse.next_within(Duration::from_millis(300)).is_none());
    drop(sse);

    // Space frees: posts are accepted again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let again = loop {
        let r = post(usize::MAX);
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(again.status, 200, "{}", again.text());
    let id: u64 = again.json_field("id").parse().unwrap();
    let mut sse = server.subscribe(&key, Some(*accepted.last().unwrap()));
    assert_eq!(sse.next().id, Some(id));
}

//! The systemd notify protocol (`sd_notify(3)`) without libsystemd: one datagram of
//! `KEY=VALUE` lines sent to the socket named by `NOTIFY_SOCKET`.
//!
//! Owns: reading `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`, and sending one
//! datagram per call. Never blocks for long (datagram sends to a local socket either go
//! through or fail at once), never panics, and never touches the environment: with
//! `Type=notify` the manager may start several processes from one unit, so the variables
//! are left in place rather than unset as `sd_notify(unset_environment=1)` would.
//!
//! Outside systemd (under `procd` on a router, or from a shell) `NOTIFY_SOCKET` is unset
//! and every call is a cheap no-op that returns `false`.
//!
//! Out of scope: file-descriptor passing (`FDSTORE=1`) and credentials, which need
//! `sendmsg` ancillary data that std does not expose without `unsafe`.

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (for example `"READY=1"`, `"WATCHDOG=1"`, `"STOPPING=1"`, or several
/// newline-separated assignments) to the service manager. Returns `true` if a manager
/// socket is configured and the datagram was sent.
#[allow(clippy::must_use_candidate)] // best effort: callers may ignore the outcome
pub fn notify(state: &str) -> bool {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => send(&path, state).is_ok(),
        None => false,
    }
}

/// How often the service must send `WATCHDOG=1`: the manager's `WatchdogSec=` when it
/// enabled the watchdog for this process, or `None`. The caller should ping at half of
/// this, as `sd_watchdog_enabled(3)` recommends.
#[must_use]
pub fn watchdog_interval() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// `WATCHDOG_PID`, when set, names the one process the watchdog is meant for: a child
/// that inherited the environment must not think it is being watched.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok()? != own_pid
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

fn send(path: &OsStr, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    match bytes.split_first() {
        // Abstract namespace: "@name" stands for a leading NUL byte.
        Some((b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        Some((b'/', _)) => {
            sock.send_to(state.as_bytes(), path)?;
        }
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor an abstract name",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;

    fn receive(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a datagram within 5 s");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8 state")
    }

    #[test]
    fn state_arrives_on_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("openpush-sd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let manager = UnixDatagram::bind(&path).expect("bind path socket");

        send(path.as_os_str(), "READY=1\nSTATUS=listening").expect("send");
        assert_eq!(receive(&manager), "READY=1\nSTATUS=listening");

        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn state_arrives_on_an_abstract_socket() {
        let name = format!("openpush-sd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let manager = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");

        send(OsStr::new(&format!("@{name}")), "WATCHDOG=1").expect("send");
        assert_eq!(receive(&manager), "WATCHDOG=1");
    }

    #[test]
    fn relative_or_empty_socket_names_are_rejected() {
        assert!(send(OsStr::new("notify.sock"), "READY=1").is_err());
        assert!(send(OsStr::new(""), "READY=1").is_err());
    }

    #[test]
    fn missing_socket_is_an_error_not_a_panic() {
        assert!(send(OsStr::new("/nonexistent/openpush/notify.sock"), "READY=1").is_err());
    }

    #[test]
    fn watchdog_interval_follows_usec_and_pid() {
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_watchdog(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("30000000"), Some("x"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }
}

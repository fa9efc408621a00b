//! Running the `openpush` binary: every process a test starts, a server or a CLI command,
//! is made by [`openpush_command`], so that none inherits what the test runner's own
//! environment says to a service (systemd's notify socket, watchdog, journal stream, state
//! directory); a test that needs one of them sets it on its command. And what a test asks of
//! a process: its output within a time, a signal, its resident memory.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::BIN;

/// The variables systemd gives a service, which change how the server logs, where it keeps
/// its database and whom it notifies (`src/sd_notify.rs`, `src/logger.rs`, `src/config.rs`).
const SERVICE_VARIABLES: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
    "STATE_DIRECTORY",
];

/// `openpush` with `args`, without the service variables of the test runner.
pub fn openpush_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(BIN);
    command.args(args);
    without_service_variables(&mut command);
    command
}

/// Takes the service variables out of what `command` inherits (a shell that runs
/// `openpush`, say).
pub fn without_service_variables(command: &mut Command) -> &mut Command {
    for name in SERVICE_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Runs the CLI with `args` and `--config config`.
pub fn cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    run_cli(&all, stdin)
}

pub fn run_cli(args: &[&str], stdin: &str) -> Output {
    run_with_stdin(&mut openpush_command(args), stdin)
}

/// Runs a command to its end with `stdin` as its standard input; its output captured.
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The output of `child` (started with its output piped) once it ends by itself within
/// `wait`; else it is killed and the test fails with what it wrote.
pub fn output_within(mut child: Child, wait: Duration, what: &str) -> Output {
    let deadline = Instant::now() + wait;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not end within {wait:?}:\n--- stdout\n{}\n--- stderr\n{}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// What a command wrote to its standard output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command wrote to its standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The resident memory of a process in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Sends the signal `which` (`-HUP`, `-STOP` …) to process `pid`, as `kill` does.
pub fn signal(which: &str, pid: u32) {
    let sent = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(sent, "kill {which} {pid}");
}

//! The command line as a first-time user meets it: help, exit codes, answers from a frozen
//! server, `serve --check`, what a failed start or a clean stop leaves behind, and the
//! messages of `client add` and `user add`; and the account commands with the server
//! running (changes visible through the API at once) and stopped, and a missing directory,
//! a file that is not a database or a missing control socket reported plainly.

use crate::support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::api::{as_client, as_user, assert_unauthorized, message};
use support::{
    BIN, Server, TIMEOUT, cli, openpush_command, output_within, run_cli, signal, stderr, stdout,
    temp_dir, wait_until, without_service_variables,
};

#[test]
fn usage_errors_exit_with_status_2() {
    for args in [
        &["bogus"][..],
        &["serve", "--no-such-flag"],
        &["user", "add"],
        &["client", "add", "phone"],
        &["serve", "--listen"],
    ] {
        let out = run_cli(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--help"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    // No command at all is a usage error too.
    assert_eq!(run_cli(&[], "").status.code(), Some(2));
    // Help is not an error: stdout, status 0.
    for args in [&["--help"][..], &["user", "add", "--help"]] {
        let out = run_cli(args, "");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage:"), "{}", stdout(&out));
    }
    // A bad configuration is status 2, a runtime failure 1.
    let dir = temp_dir("cli-usage");
    let config = dir.join("bad.conf");
    std::fs::write(&config, "keepalive_secs = 0\n").unwrap();
    let out = run_cli(
        &["serve", "--check", "--config", config.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("keepalive_secs: must be between 1 and 59, not 0"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_misspelled_key_gets_a_suggestion() {
    let dir = temp_dir("cli-typo");
    let config = dir.join("typo.conf");
    std::fs::write(&config, "# a comment\nmax_conections = 10\n").unwrap();
    let out = run_cli(
        &["serve", "--check", "--config", config.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            r#"line 2: unknown option "max_conections"; did you mean "max_connections"?"#
        ),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends SIGCONT to a SIGSTOPped server when dropped, so a failing test leaves no frozen
/// process behind.
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Frozen {
        signal("-STOP", pid);
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

#[test]
fn a_frozen_server_is_reported_plainly_within_seconds() {
    let s = Server::start("cli-frozen");
    s.add_user("ann", "password1");
    let frozen = Frozen::new(s.pid());
    let started = Instant::now();
    let out = s.cli(&["user", "list"], "");
    let took = started.elapsed();
    drop(frozen);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(took < Duration::from_secs(5), "the CLI waited {took:?}");
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
    let text = stderr(&out);
    assert!(text.contains("does not answer"), "{text}");
    assert!(text.contains("stopped"), "{text}");
    assert!(!text.contains("os error"), "{text}");
    // Once it runs again, the CLI works through it as before.
    let out = s.cli(&["user", "list"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ann"));
}

#[test]
fn serve_check_prints_the_config_file_it_reads_back() {
    let dir = temp_dir("cli-check");
    let config = dir.join("first.conf");
    std::fs::write(
        &config,
        format!(
            "db = {}\nlisten = 0.0.0.0:8080\nlisten = [::]:8080\nkeepalive_secs = 20\n\
             public_url = https://push.example.org\nanonymous_access = none\n\
             trusted_proxies = 10.0.0.1, 10.0.0.2\nrequests_per_sec_per_addr = 2.5\n\
             max_connections = 300\nlog_level = warn\n",
            dir.join("x.redb").display()
        ),
    )
    .unwrap();
    let check = |path: &std::path::Path| {
        let out = run_cli(
            &["serve", "--check", "--config", path.to_str().unwrap()],
            "",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let printed = check(&config);
    assert!(!printed.contains('{'), "a debug dump: {printed}");
    for line in printed.lines() {
        let (key, _) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("not `key = value`: {line:?}"));
        assert!(
            key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{line}"
        );
    }
    for line in [
        "listen = 0.0.0.0:8080",
        "listen = [::]:8080",
        "keepalive_secs = 20",
        "public_url = https://push.example.org",
        "anonymous_access = none",
        "trusted_proxies = 10.0.0.1, 10.0.0.2",
        "requests_per_sec_per_addr = 2.5",
        "max_connections = 300",
        "log_level = warn",
        // Defaults too: every key is there.
        "retry_secs = 5",
        "max_data_bytes = 4096",
        "login_max_delay_secs = 60",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "no {line:?} in\n{printed}"
        );
    }
    // The output is a config file that means the same.
    let second = dir.join("second.conf");
    std::fs::write(&second, &printed).unwrap();
    assert_eq!(check(&second), printed);
    // Flags count: --check shows what the server would run with.
    let out = run_cli(
        &[
            "serve",
            "--check",
            "--config",
            second.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9",
            "--log-level",
            "debug",
        ],
        "",
    );
    let flagged = stdout(&out);
    assert!(flagged.lines().any(|l| l == "listen = 127.0.0.1:9"));
    assert!(!flagged.contains("0.0.0.0:8080"));
    assert!(flagged.lines().any(|l| l == "log_level = debug"));
    assert!(!dir.join("x.redb").exists(), "--check created the database");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failed_start_leaves_no_new_database() {
    let s = Server::start("cli-taken");
    let dir = temp_dir("cli-taken-second");
    let serve = |db: &std::path::Path| {
        let out = openpush_command(["serve", "--db", db.to_str().unwrap(), "--listen"])
            .arg(s.addr.to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("cannot listen"), "{}", stderr(&out));
    };
    let fresh = dir.join("fresh.redb");
    serve(&fresh);
    assert!(!fresh.exists(), "the failed start left {}", fresh.display());
    assert!(!dir.join("fresh.redb.sock").exists());
    // A database that was there before stays, with its data.
    let kept = dir.join("kept.redb");
    let out = run_cli(
        &[
            "user",
            "add",
            "ann",
            "--password-stdin",
            "--db",
            kept.to_str().unwrap(),
        ],
        "password1\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    serve(&kept);
    let out = run_cli(&["user", "list", "--db", kept.to_str().unwrap()], "");
    assert!(stdout(&out).contains("ann"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_clean_stop_removes_the_control_socket() {
    let mut s = Server::start("cli-stop");
    let socket = s.dir.join("openpush.redb.sock");
    // The server logs that it listens just before it binds the control socket.
    let appears = |socket: &std::path::Path| wait_until("the control socket", || socket.exists());
    appears(&socket);
    assert!(s.terminate().success());
    assert!(
        !socket.exists(),
        "{} is left after SIGTERM",
        socket.display()
    );
    assert!(s.db.exists());
    // After a kill -9 a stale socket stays; the next start replaces it.
    s.restart();
    appears(&socket);
    s.kill9();
    assert!(socket.exists());
    s.restart();
    s.add_user("ann", "password1");
}

#[test]
fn client_add_labels_the_key_only_on_a_terminal() {
    let s = Server::start("cli-label");
    s.add_user("ann", "password1");
    // For scripts: the key alone.
    let key = s.add_client("ann", "phone");
    assert!(
        key.len() >= 32 && !key.contains(char::is_whitespace),
        "{key:?}"
    );
    // On a terminal (`script` gives the command one): the key with what it is for.
    let Ok(script) = which("script") else {
        eprintln!("no `script` command: the terminal case is not tested");
        return;
    };
    let command = format!(
        "{BIN} client add --user ann tablet --config {}",
        s.config.display()
    );
    let out = without_service_variables(&mut Command::new(script))
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("its key"), "{text:?}");
    assert!(text.contains("push client"), "{text:?}");
    let listed = stdout(&s.cli(&["client", "list", "--user", "ann"], ""));
    let tablet_key = listed
        .lines()
        .find(|l| l.contains("tablet"))
        .and_then(|l| l.split('\t').next_back())
        .unwrap()
        .to_owned();
    assert!(text.contains(&tablet_key), "{text:?}");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn a_short_password_is_warned_about_when_the_server_is_reachable() {
    let dir = temp_dir("cli-password");
    let db = dir.join("x.redb");
    let lan = dir.join("lan.conf");
    std::fs::write(
        &lan,
        format!("db = {}\nlisten = 0.0.0.0:8080\n", db.display()),
    )
    .unwrap();
    let local = dir.join("local.conf");
    std::fs::write(&local, format!("db = {}\n", db.display())).unwrap();
    let warned = |out: &Output| {
        assert!(out.status.success(), "{}", stderr(out));
        stderr(out).contains("warning")
    };
    let out = cli(&lan, &["user", "add", "ann", "--password-stdin"], "abc\n");
    assert!(warned(&out));
    assert!(stderr(&out).contains("0.0.0.0:8080"), "{}", stderr(&out));
    let out = cli(
        &lan,
        &["user", "passwd", "ann", "--password-stdin"],
        "1234567\n",
    );
    assert!(warned(&out));
    let out = cli(
        &lan,
        &["user", "passwd", "ann", "--password-stdin"],
        "12345678\n",
    );
    assert!(!warned(&out), "{}", stderr(&out));
    // Loopback only (the default): nobody else can try.
    let out = cli(&local, &["user", "add", "ben", "--password-stdin"], "abc\n");
    assert!(!warned(&out), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs the CLI and fails the test if it does not end within `TIMEOUT` (a hang is a bug).
fn run_cli_within(args: &[&str], stdin: &str) -> Output {
    let mut child = openpush_command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    output_within(child, TIMEOUT, &format!("openpush {args:?}"))
}

#[test]
fn cli_version_and_help_describe_the_commands() {
    let out = run_cli_within(&["--version"], "");
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("openpush 0.1"), "{}", stdout(&out));

    let out = run_cli_within(&["--help"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let help = stdout(&out);
    for word in ["serve", "user", "client", "--version"] {
        assert!(help.contains(word), "{help}");
    }
    for (args, words) in [
        (
            &["user", "--help"][..],
            &["add", "list", "passwd", "del"][..],
        ),
        (&["client", "--help"], &["add", "list", "del"]),
        (&["serve", "--help"], &["--listen", "--db", "--config"]),
        (
            &["user", "add", "--help"],
            &["--password-stdin", "--admin", "--db"],
        ),
        (&["client", "add", "--help"], &["--user", "--db"]),
    ] {
        let out = run_cli_within(args, "");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        for word in words {
            assert!(stdout(&out).contains(word), "{args:?}: {}", stdout(&out));
        }
    }
    let out = run_cli_within(&["frobnicate"], "");
    assert!(!out.status.success());
    let out = run_cli_within(&[], "");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--help"), "{}", stderr(&out));
}

/// The CLI commands against `config`, whether a server runs or not; checks their output.
fn exercise_cli(config: &std::path::Path) -> String {
    let ok = |args: &[&str], stdin: &str| {
        let out = cli(config, args, stdin);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let fails = |args: &[&str], stdin: &str| {
        let out = cli(config, args, stdin);
        assert!(
            !out.status.success(),
            "{args:?} succeeded: {}",
            stdout(&out)
        );
        assert!(!stderr(&out).trim().is_empty());
        stderr(&out)
    };
    ok(&["user", "add", "bob", "--password-stdin"], "pw-bob\n");
    fails(&["user", "add", "bob", "--password-stdin"], "again\n");
    let list = ok(&["user", "list"], "");
    assert!(list.contains("\tann\tadmin"), "{list}");
    assert!(list.contains("\tbob\tuser"), "{list}");
    assert!(
        !list.contains("argon2") && !list.contains("pw-bob"),
        "{list}"
    );

    ok(&["user", "passwd", "bob", "--password-stdin"], "pw-bob-2\n");
    fails(&["user", "passwd", "nobody", "--password-stdin"], "x\n");

    let key = ok(&["client", "add", "--user", "bob", "laptop"], "");
    let key = key.trim().to_owned();
    assert!(key.len() >= 27, "{key}");
    fails(&["client", "add", "--user", "bob", "laptop"], "");
    fails(&["client", "add", "--user", "nobody", "laptop"], "");
    let list = ok(&["client", "list"], "");
    assert!(
        list.contains("\tbob\tlaptop\t0\t") && list.contains(&key),
        "{list}"
    );
    assert!(list.contains("\tann\tphone\t"), "{list}");
    let list = ok(&["client", "list", "--user", "bob"], "");
    assert!(!list.contains("\tann\t"), "{list}");

    ok(&["client", "del", "--user", "ann", "phone"], "");
    fails(&["client", "del", "--user", "ann", "phone"], "");
    assert!(!ok(&["client", "list"], "").contains("\tphone\t"));

    ok(&["user", "add", "gone", "--password-stdin"], "pw\n");
    ok(&["client", "add", "--user", "gone", "dev"], "");
    ok(&["user", "del", "gone"], "");
    fails(&["user", "del", "gone"], "");
    let list = ok(&["user", "list"], "");
    assert!(!list.contains("gone"), "{list}");
    assert!(!ok(&["client", "list"], "").contains("gone"));
    key
}

/// What [`exercise_cli`] did, as the API sees it: bob's new password, the new client's
/// `key`, the deleted phone and its app (`phone`: key and routing token), the deleted user.
fn assert_exercised(s: &Server, key: &str, phone: (&str, &str)) {
    assert_unauthorized(&as_user(s, "GET", "/user", ("bob", "pw-bob"), ""));
    assert_eq!(
        as_user(s, "GET", "/user", ("bob", "pw-bob-2"), "").status,
        200
    );
    assert_eq!(as_client(s, "GET", "/application", key, "").status, 200);
    assert_unauthorized(&as_client(s, "GET", "/application", phone.0, ""));
    s.post_message(&message(phone.1, "{}")).assert_error(404);
    assert_unauthorized(&as_user(s, "GET", "/user", ("gone", "pw"), ""));
}

#[test]
fn cli_manages_accounts_while_the_server_runs() {
    let s = Server::start("cli-live");
    let (phone_key, phone_token) = s.device("ann");
    s.add_user("cat", "pw-cat");
    // Log bob in once after creating him, so that the password change must clear the cache.
    let out = s.cli(&["user", "add", "pre", "--password-stdin"], "pw-pre\n");
    assert!(out.status.success());
    assert_eq!(
        as_user(&s, "GET", "/user", ("pre", "pw-pre"), "").status,
        200
    );
    let out = s.cli(&["user", "passwd", "pre", "--password-stdin"], "pw-pre-2\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_unauthorized(&as_user(&s, "GET", "/user", ("pre", "pw-pre"), ""));
    assert_eq!(
        as_user(&s, "GET", "/user", ("pre", "pw-pre-2"), "").status,
        200
    );

    let key = exercise_cli(&s.config);
    // Every change is visible through the API at once.
    assert_exercised(&s, &key, (&phone_key, &phone_token));
    // A deleted user's cached login is gone too.
    assert_eq!(
        as_user(&s, "GET", "/user", ("cat", "pw-cat"), "").status,
        200
    );
    assert!(s.cli(&["user", "del", "cat"], "").status.success());
    assert_unauthorized(&as_user(&s, "GET", "/user", ("cat", "pw-cat"), ""));
}

#[test]
fn cli_manages_accounts_while_the_server_is_stopped() {
    let mut s = Server::start("cli-stopped");
    let (phone_key, phone_token) = s.device("ann");
    s.kill9();
    let key = exercise_cli(&s.config);
    s.restart();
    assert_exercised(&s, &key, (&phone_key, &phone_token));
}

#[test]
fn cli_with_a_db_in_a_missing_directory_fails_clearly() {
    let dir = temp_dir("cli-missing");
    let db = dir.join("no/such/dir/openpush.redb");
    let db = db.to_str().unwrap();
    for (args, stdin) in [
        (&["user", "list", "--db", db][..], ""),
        (
            &["user", "add", "ann", "--password-stdin", "--db", db],
            "pw\n",
        ),
        (&["client", "list", "--db", db], ""),
    ] {
        let out = run_cli_within(args, stdin);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("no/such/dir"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_with_a_file_that_is_not_a_database_fails_clearly() {
    let dir = temp_dir("cli-garbage");
    let db = dir.join("openpush.redb");
    std::fs::write(&db, "this is not a database\n".repeat(100)).unwrap();
    let db = db.to_str().unwrap();
    for (args, stdin) in [
        (&["user", "list", "--db", db][..], ""),
        (
            &["user", "add", "ann", "--password-stdin", "--db", db],
            "pw\n",
        ),
        (&["client", "add", "--user", "ann", "x", "--db", db], ""),
    ] {
        let out = run_cli_within(args, stdin);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(db), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // The file is left as it was.
    assert_eq!(
        std::fs::read_to_string(db).unwrap(),
        "this is not a database\n".repeat(100)
    );
    // An empty file and a directory are refused the same way.
    let empty = dir.join("empty.redb");
    std::fs::write(&empty, "").unwrap();
    for path in [empty.to_str().unwrap(), dir.to_str().unwrap()] {
        let out = run_cli_within(&["user", "list", "--db", path], "");
        let err = stderr(&out);
        assert!(!out.status.success() || err.is_empty(), "{path}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_fails_clearly_when_the_server_holds_the_db_but_its_socket_is_gone() {
    let s = Server::start("cli-no-socket");
    s.add_user("ann", "pw-ann");
    let mut socket = s.db.as_os_str().to_owned();
    socket.push(".sock");
    std::fs::remove_file(&socket).unwrap();
    let config = s.config.to_str().unwrap();
    let out = run_cli_within(&["user", "list", "--config", config], "");
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("control socket") && err.contains(".sock"),
        "{err}"
    );
    // The server is unharmed.
    assert_eq!(
        as_user(&s, "GET", "/user", ("ann", "pw-ann"), "").status,
        200
    );
}

//! `openpush-client` against the real server: register, send, listen; resume after a
//! server restart and after `kill -9` of the client (nothing lost, nothing handed on twice);
//! a failing `--exec` gets its message again; the keepalive watchdog; usage errors.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// An --exec that appends `<id> <app> <urgency> <plaintext>` to `log`, one line a message.
fn recorder(log: &Path) -> String {
    format!(
        "m=$(cat); echo \"$OPENPUSH_ID $OPENPUSH_APP $OPENPUSH_URGENCY $m\" >> '{}'",
        log.display()
    )
}

/// The ids in a recorder's log, in order.
fn ids(log: &Path) -> Vec<u64> {
    lines(log)
        .iter()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// The messages' texts in a recorder's log, in order.
fn texts(log: &Path) -> Vec<String> {
    lines(log)
        .iter()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or_default().to_owned())
        .collect()
}

/// The id a recorder's log gives the message `text`, once it is there.
fn id_of(log: &Path, text: &str) -> Option<u64> {
    ids(log)
        .into_iter()
        .zip(texts(log))
        .find(|(_, t)| t == text)
        .map(|(id, _)| id)
}

/// Each sent text handed on once, in the order sent, with rising ids.
fn assert_each_once(log: &Path, sent: &[&str]) {
    let (ids, texts) = (ids(log), texts(log));
    assert_eq!(texts, sent, "handed on: {texts:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids: {ids:?}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A registered app: (server, scratch dir, state dir, subscription file).
fn setup(
    name: &str,
    config: &str,
) -> (
    Server,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let server = Server::start(name, config);
    let dir = temp_dir(name);
    let state = dir.join("state");
    let sub = register(&server, &state, "chat");
    let sub_file = dir.join("subscription.json");
    std::fs::write(&sub_file, &sub).unwrap();
    (server, dir, state, sub_file)
}

#[test]
fn registered_app_gets_web_push_decrypted_by_exec() {
    let server = Server::start("e2e", "");
    let dir = temp_dir("e2e");
    let state = dir.join("state");
    let sub = register(&server, &state, "chat");
    let prefix = format!("{{\"endpoint\":\"{}/push/", server.url());
    assert!(sub.starts_with(&prefix), "{sub}");
    assert!(sub.contains("\"keys\":{\"p256dh\":\"B"), "{sub}");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("client.json")), 0o600);

    // Again, without a password: the device and the app are known, the subscription is the same.
    let again = client(
        &[
            "register",
            "--server",
            &server.url(),
            "--user",
            "ann",
            "--device",
            "laptop",
            "--app",
            "chat",
            "--state-dir",
            state.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(ok(&again).trim(), sub);

    let sub_file = dir.join("sub.json");
    std::fs::write(&sub_file, &sub).unwrap();
    send_web_push(&dir, &sub_file, "Dinner is ready, ünïcödé");
    let msg = dir.join("urgent.txt");
    std::fs::write(&msg, "second").unwrap();
    let out = client(
        &[
            "send",
            "--subscription",
            sub_file.to_str().unwrap(),
            "--urgency",
            "high",
            "--ttl",
            "60",
            "--topic",
            "dinner2",
            msg.to_str().unwrap(),
        ],
        "",
    );
    let stdout = ok(&out);
    assert!(stdout.contains("TTL: 60"), "{stdout}");

    let log = dir.join("log");
    let listener = Listener::start(&state, &recorder(&log), &[]);
    wait_for("two messages", || lines(&log).len() == 2);
    let got = lines(&log);
    let first = ids(&log)[0];
    assert_eq!(
        got[0],
        format!("{first} chat normal Dinner is ready, ünïcödé")
    );
    assert_eq!(got[1], format!("{} chat high second", first + 1));

    // An OpenPush v0.1 message to the same app, with its routing token.
    let token = sub[prefix.len()..].split('"').next().unwrap();
    let out = client(
        &[
            "send",
            "--server",
            &server.url(),
            "--token",
            token,
            "--urgency",
            "high",
            r#"{"title":"Hi"}"#,
        ],
        "",
    );
    assert!(ok(&out).starts_with("200 OK\n{\"id\":"));
    wait_for("the OpenPush message", || lines(&log).len() == 3);
    assert_eq!(
        lines(&log)[2],
        format!("{} chat high {{\"title\":\"Hi\"}}", first + 2)
    );
    drop(listener);
}

#[test]
fn listen_without_exec_prints_json_lines() {
    let (_server, dir, state, sub_file) = setup("print", "");
    send_web_push(&dir, &sub_file, "line \"one\"\n");
    let mut listener = Listener::printing(&state);
    let mut stdout = BufReader::new(listener.child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let id: u64 = line
        .strip_prefix("{\"id\":")
        .and_then(|rest| rest.split(',').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(
        line,
        format!(
            "{{\"id\":{id},\"app\":\"chat\",\"urgency\":\"normal\",\"data\":\"line \\\"one\\\"\\n\"}}\n"
        )
    );
}

#[test]
fn failing_exec_gets_the_message_again_in_order() {
    let (_server, dir, state, sub_file) = setup("fail", "");
    send_web_push(&dir, &sub_file, "a");
    send_web_push(&dir, &sub_file, "b");
    let log = dir.join("log");
    let marks = dir.join("marks");
    std::fs::create_dir(&marks).unwrap();
    // Each message fails on its first try.
    let exec = format!(
        "if [ ! -e '{m}'/$OPENPUSH_ID ]; then touch '{m}'/$OPENPUSH_ID; exit 3; fi; {rec}",
        m = marks.display(),
        rec = recorder(&log)
    );
    let listener = Listener::start(&state, &exec, &[]);
    listener.wait_log("comes again");
    wait_for("both messages", || lines(&log).len() == 2);
    std::thread::sleep(Duration::from_millis(1500));
    assert_each_once(&log, &["a", "b"]);
    let (a, b) = (id_of(&log, "a").unwrap(), id_of(&log, "b").unwrap());
    assert!(marks.join(a.to_string()).exists() && marks.join(b.to_string()).exists());
    assert_eq!(
        std::fs::read_to_string(state.join("last-event-id")).unwrap(),
        format!("{b}\n")
    );
}

#[test]
fn resumes_after_server_restart_without_loss_or_repeat() {
    let (mut server, dir, state, sub_file) = setup("restart", "");
    let log = dir.join("log");
    let listener = Listener::start(&state, &recorder(&log), &[]);
    for i in 0..3 {
        send_web_push(&dir, &sub_file, &format!("m{i}"));
    }
    wait_for("three messages", || lines(&log).len() == 3);
    // Handed on and persisted, but not yet announced to the server (that waits for the
    // next connection): the restarted server sends them again; the client skips them.
    server.restart();
    for i in 3..6 {
        send_web_push(&dir, &sub_file, &format!("m{i}"));
    }
    wait_for("six messages", || lines(&log).len() == 6);
    std::thread::sleep(Duration::from_millis(1500));
    assert_each_once(&log, &["m0", "m1", "m2", "m3", "m4", "m5"]);
    drop(listener);
}

#[test]
fn resumes_after_kill9_of_the_client_without_loss_or_repeat() {
    let (_server, dir, state, sub_file) = setup("kill9", "");
    let log = dir.join("log");
    let mut listener = Listener::start(&state, &recorder(&log), &[]);
    for i in 0..3 {
        send_web_push(&dir, &sub_file, &format!("m{i}"));
    }
    // Killed once the third is confirmed (killed between its --exec and the fsync, it would
    // rightly come again: the one window docs/client.md names).
    let last = state.join("last-event-id");
    wait_for("three confirmed", || {
        id_of(&log, "m2").is_some_and(|third| lines(&last) == [third.to_string()])
    });
    listener.kill9_group();
    for i in 3..6 {
        send_web_push(&dir, &sub_file, &format!("m{i}"));
    }

    // Killed while its --exec runs: that message was not handed on, so it comes again, once.
    let started = dir.join("started");
    let slow = format!(
        "echo $OPENPUSH_ID >> '{}'; sleep 5; {}",
        started.display(),
        recorder(&log)
    );
    let mut listener = Listener::start(&state, &slow, &[]);
    wait_for("the slow --exec to start", || !lines(&started).is_empty());
    listener.kill9_group();
    assert_eq!(lines(&log).len(), 3);

    let listener = Listener::start(&state, &recorder(&log), &[]);
    wait_for("six messages", || lines(&log).len() == 6);
    std::thread::sleep(Duration::from_millis(1500));
    assert_each_once(&log, &["m0", "m1", "m2", "m3", "m4", "m5"]);
    drop(listener);
}

#[test]
fn silent_stream_is_dropped_by_the_watchdog_and_resumed() {
    let (server, dir, state, sub_file) = setup("watchdog", "keepalive_secs = 1");
    let log = dir.join("log");
    let listener = Listener::start(&state, &recorder(&log), &["--watchdog-secs", "2"]);
    listener.wait_log("connected to");
    let pid = server.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    listener.wait_log("no keepalive");
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    send_web_push(&dir, &sub_file, "after the silence");
    wait_for("the message", || lines(&log).len() == 1);
    assert_eq!(texts(&log), ["after the silence"]);
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    let dir = temp_dir("usage");
    for (args, needle) in [
        (
            vec!["register", "--server", "http://127.0.0.1:1"],
            "Required options not provided",
        ),
        (vec!["send"], "--subscription FILE"),
        (vec!["bogus"], "Unrecognized argument"),
        (
            vec!["listen", "--state-dir", dir.to_str().unwrap()],
            "run openpush-client register first",
        ),
        (
            vec![
                "register",
                "--server",
                "https://push.example.org",
                "--user",
                "u",
                "--device",
                "d",
                "--app",
                "a",
            ],
            "TLS-terminating proxy",
        ),
    ] {
        let out = client(&args, "");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    for command in ["register", "listen", "send", "vapid-keygen"] {
        let out = client(&[command, "--help"], "");
        assert!(ok(&out).contains("Usage: openpush-client"), "{command}");
    }
}

#[test]
fn vapid_keygen_writes_a_private_pem_once() {
    let dir = temp_dir("keygen");
    let key = dir.join("vapid.pem");
    let out = client(&["vapid-keygen", "--out", key.to_str().unwrap()], "");
    let public = ok(&out);
    assert_eq!(public.trim().len(), 87, "65 bytes base64url: {public}");
    assert_eq!(mode(&key), 0o600);
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let again = client(&["vapid-keygen", "--out", key.to_str().unwrap()], "");
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn app_registered_while_listening_is_decrypted() {
    let (server, dir, state, _sub) = setup("late-app", "");
    let log = dir.join("log");
    let listener = Listener::start(&state, &recorder(&log), &[]);
    listener.wait_log("connected to");
    let sub = register(&server, &state, "late");
    let sub_file = dir.join("late.json");
    std::fs::write(&sub_file, sub).unwrap();
    send_web_push(&dir, &sub_file, "for the late app");
    wait_for("the message", || lines(&log).len() == 1);
    let id = ids(&log)[0];
    assert_eq!(lines(&log)[0], format!("{id} late normal for the late app"));
}

#[test]
fn message_that_does_not_decrypt_is_skipped_and_later_ones_arrive() {
    let (server, dir, state, sub_file) = setup("undecryptable", "");
    let sub = std::fs::read_to_string(&sub_file).unwrap();
    let endpoint = openpush_wire::json::field(&sub, "endpoint")
        .and_then(openpush_wire::json::string)
        .unwrap();
    let url = openpush_wire::url::Url::parse(&endpoint).unwrap();
    let conn = std::net::TcpStream::connect(server.addr).unwrap();
    let r = openpush_wire::http::exchange(conn, "POST", &url, &[], b"not encrypted", 4096).unwrap();
    assert_eq!(r.head.status, 201);
    send_web_push(&dir, &sub_file, "encrypted");
    let log = dir.join("log");
    let listener = Listener::start(&state, &recorder(&log), &[]);
    let skipped = listener.wait_log(" skipped");
    let bad: u64 = skipped
        .split("message ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{skipped}"));
    wait_for("the encrypted message", || lines(&log).len() == 1);
    assert_eq!(texts(&log), ["encrypted"]);
    assert!(ids(&log)[0] > bad, "{skipped}");
}

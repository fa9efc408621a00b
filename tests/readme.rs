//! The README's API walkthrough, run as written: the shell script between
//! `<!-- walkthrough -->` and `<!-- /walkthrough -->` against a real server, from the
//! server's directory (so its `openpush` commands find the server's control socket), with
//! the server's address in `OPENPUSH_URL`. It needs `sh` and `curl` (`.ci/run` installs curl).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{BIN, Server};

const README: &str = include_str!("../README.md");

/// The fenced `sh` block between the walkthrough markers.
fn walkthrough() -> &'static str {
    let start = README
        .find("<!-- walkthrough -->\n```sh\n")
        .expect("README.md has no <!-- walkthrough --> marker before a ```sh block");
    let body = &README[start..];
    let body = &body[body.find("```sh\n").unwrap() + "```sh\n".len()..];
    let end = body
        .find("```\n<!-- /walkthrough -->")
        .expect("the walkthrough block ends with ``` and <!-- /walkthrough -->");
    &body[..end]
}

#[test]
fn the_readme_api_walkthrough_runs_as_written() {
    assert!(
        Command::new("curl")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "the README walkthrough test needs curl (apt-get install curl)"
    );
    let s = Server::start("readme-walkthrough");
    let script = s.dir.join("walkthrough.sh");
    std::fs::write(&script, walkthrough()).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut child = Command::new("sh")
        .arg(&script)
        .current_dir(&s.dir)
        .env("PATH", path)
        .env("OPENPUSH_URL", format!("http://{}", s.addr))
        .env_remove("STATE_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README walkthrough failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // It went all the way: both messages arrived on the stream.
    assert!(stdout.contains("id: 2"), "{stdout}");
}

#[test]
fn the_walkthrough_is_one_posix_script() {
    let script = walkthrough();
    assert!(script.starts_with("set -eu\n"), "{script}");
    // Checked by `sh -n` (syntax only) so that a broken edit fails here with a clear message.
    let out = support::run_with_stdin(Command::new("sh").arg("-n"), script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The flash figure per message, as the README, the OpenWrt notes and the UCI comment give
/// it, is BENCHMARKS.md's measured bytes per message with one poster (rounded to kB).
#[test]
fn the_flash_wear_figure_is_the_measured_one() {
    let benchmarks = include_str!("../BENCHMARKS.md");
    let row = benchmarks
        .lines()
        .find(|l| l.starts_with("| disk bytes per message |"))
        .expect("BENCHMARKS.md has a `disk bytes per message` row");
    let before = &row[..row.find(" B (c=1)").expect("a (c=1) figure")];
    let digits: String = before
        .rsplit(' ')
        .next()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let kb = (digits.parse::<f64>().unwrap() / 1000.0).round();
    let wanted = [format!("{kb} kB"), format!("~{kb} KB")];
    for (name, text) in [
        ("README.md", README),
        ("openwrt/README.md", include_str!("../openwrt/README.md")),
        (
            "openwrt/openpush/files/openpush.config",
            include_str!("../openwrt/openpush/files/openpush.config"),
        ),
    ] {
        assert!(
            wanted.iter().any(|w| text.contains(w.as_str())),
            "{name} does not give the measured {kb} kB per message"
        );
    }
}

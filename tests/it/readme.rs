//! The docs, checked against what they describe. The API walkthrough in `docs/api.md` runs as
//! written: the shell script between `<!-- walkthrough -->` and `<!-- /walkthrough -->`
//! against a real server, from the server's directory (so its `openpush` commands find the
//! server's control socket), with the server's address in `OPENPUSH_URL`; it needs `sh` and
//! `curl` (`.ci/run` installs curl). The README's two set-up commands are the ones CI runs;
//! figures, the UCI option names and every relative link in `README.md` and `docs/` follow
//! the files they name.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{BIN, Server, output_within, without_service_variables};

const README: &str = include_str!("../../README.md");
const API: &str = include_str!("../../docs/api.md");
const CONFIGURATION: &str = include_str!("../../docs/configuration.md");
const INIT_SCRIPT: &str = include_str!("../../openwrt/openpush/files/openpush.init");

/// The fenced `sh` block between `<!-- NAME -->` and `<!-- /NAME -->` in `text`.
fn marked_block<'a>(text: &'a str, file: &str, name: &str) -> &'a str {
    let open = format!("<!-- {name} -->\n```sh\n");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("{file} has no <!-- {name} --> marker before a ```sh block"));
    let body = &text[start + open.len()..];
    let end = body
        .find(&format!("```\n<!-- /{name} -->"))
        .unwrap_or_else(|| panic!("the {name} block of {file} ends with ``` and <!-- /{name} -->"));
    &body[..end]
}

/// The fenced `sh` block between the walkthrough markers.
fn walkthrough() -> &'static str {
    marked_block(API, "docs/api.md", "walkthrough")
}

#[test]
fn the_api_walkthrough_runs_as_written() {
    assert!(
        Command::new("curl")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "the API walkthrough test needs curl (apt-get install curl)"
    );
    let s = Server::start("readme-walkthrough");
    let script = s.dir.join("walkthrough.sh");
    std::fs::write(&script, walkthrough()).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let child = without_service_variables(&mut Command::new("sh"))
        .arg(&script)
        .current_dir(&s.dir)
        .env("PATH", path)
        .env("OPENPUSH_URL", format!("http://{}", s.addr))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(
        child,
        Duration::from_secs(60),
        "the API walkthrough in docs/api.md",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the API walkthrough in docs/api.md failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
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

/// The flash figure per message, as the OpenWrt install page, the OpenWrt notes and the UCI
/// comment give it, is BENCHMARKS.md's measured bytes per message with one poster (rounded to kB).
#[test]
fn the_flash_wear_figure_is_the_measured_one() {
    let benchmarks = include_str!("../../BENCHMARKS.md");
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
        (
            "docs/install-openwrt.md",
            include_str!("../../docs/install-openwrt.md"),
        ),
        ("openwrt/README.md", include_str!("../../openwrt/README.md")),
        (
            "openwrt/openpush/files/openpush.config",
            include_str!("../../openwrt/openpush/files/openpush.config"),
        ),
    ] {
        assert!(
            wanted.iter().any(|w| text.contains(w.as_str())),
            "{name} does not give the measured {kb} kB per message"
        );
    }
}

/// The README's set-up: one command runs the server on its embedded store, one runs the
/// tests, and `.ci/run` runs that same test command; the README stays a page, not a manual.
#[test]
fn the_readme_has_the_two_set_up_commands_ci_runs() {
    let setup = marked_block(README, "README.md", "setup");
    let commands: Vec<&str> = setup
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        commands,
        [
            "cargo run --release -- serve",
            "cargo test --features redis"
        ]
    );
    let ci = include_str!("../../.ci/run");
    assert!(
        ci.lines()
            .any(|l| l.starts_with("cargo test --locked --features redis")),
        ".ci/run does not run the README's `cargo test --features redis`"
    );
    let lines = README.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; the rest belongs in docs/"
    );
}

/// The option names the OpenWrt init script reads from UCI: the ones it copies unchanged
/// (`PASS_OPTIONS`), and those it reads with `config_get` or `config_list_foreach`.
fn uci_options() -> Vec<&'static str> {
    let pass = INIT_SCRIPT
        .split("PASS_OPTIONS=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("openpush.init has PASS_OPTIONS=\"…\"");
    let mut options: Vec<&str> = pass.split_whitespace().collect();
    for line in INIT_SCRIPT.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["config_get" | "config_get_bool", _, _, option, ..]
            | ["config_list_foreach", _, option, ..] => options.push(option),
            _ => {}
        }
    }
    options
}

/// Every config key in `docs/configuration.md` stands beside the UCI option that becomes it
/// (or "none"), and that option is one the init script reads; every option it copies is
/// documented.
#[test]
fn the_uci_names_beside_the_config_keys_are_the_init_scripts() {
    let options = uci_options();
    let pass = &INIT_SCRIPT[INIT_SCRIPT.find("PASS_OPTIONS=").unwrap()..];
    let pass: Vec<&str> = pass["PASS_OPTIONS=\"".len()..]
        .split('"')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let mut documented = Vec::new();
    for section in ["\n## Settings\n", "\n## Limits\n"] {
        let start = CONFIGURATION.find(section).expect(section);
        let rest = &CONFIGURATION[start + 1..];
        let end = rest.find("\n## ").unwrap_or(rest.len());
        for row in rest[..end].lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row[1..].split('|').map(str::trim).collect();
            let keys: Vec<&str> = cells[0].split('`').skip(1).step_by(2).collect();
            let uci = cells[1];
            if uci.starts_with("none") {
                for key in &keys {
                    assert!(!options.contains(key), "{key}: the init script reads it");
                }
                continue;
            }
            let names: Vec<&str> = uci
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|n| n.trim_start_matches("list "))
                .take(keys.len())
                .collect();
            assert_eq!(names, keys, "the UCI cell of {row}");
            for name in names {
                assert!(options.contains(&name), "openpush.init never reads {name}");
                documented.push(name);
            }
        }
    }
    for option in pass {
        assert!(
            documented.contains(&option),
            "docs/configuration.md does not document the UCI option {option}"
        );
    }
    for option in ["enabled", "storage", "nofile"] {
        assert!(
            options.contains(&option),
            "openpush.init never reads {option}"
        );
        assert!(
            CONFIGURATION.contains(&format!("| `{option}` |")),
            "docs/configuration.md does not document {option}"
        );
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a markdown text outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The anchors of a markdown file's headings, numbered as GitHub numbers repeated ones.
fn anchors(text: &str) -> Vec<String> {
    let mut anchors: Vec<String> = Vec::new();
    for line in prose(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(heading.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while anchors.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        anchors.push(anchor);
    }
    anchors
}

/// The targets of the inline links `[text](target)` of a markdown line, code spans left out.
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            continue;
        }
        let mut rest = part;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(&after[..end]);
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_in_the_readme_and_docs_leads_somewhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 10, "docs/ has {} pages", docs.len());
    files.extend(docs);
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(root).unwrap().display().to_string();
        for line in prose(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                if !linked.exists() {
                    broken.push(format!("{name}: {target}: no such file"));
                    continue;
                }
                if anchor.is_empty() {
                    continue;
                }
                let linked_text = std::fs::read_to_string(&linked).unwrap_or_default();
                if !anchors(&linked_text).iter().any(|a| a == anchor) {
                    broken.push(format!("{name}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

//! The push client example of `docs/client.md`, run as written: the shell script between
//! `<!-- client-example -->` and `<!-- /client-example -->` against a real server, from the
//! server's directory (so `openpush user add` finds its control socket), with both binaries
//! on the PATH, the server's address in `OPENPUSH_URL` and a fresh `XDG_STATE_HOME` (so the
//! default state directory is used).

use std::process::Command;

use crate::support::*;

const CLIENT_DOC: &str = include_str!("../../../../docs/client.md");

fn example() -> &'static str {
    let start = CLIENT_DOC
        .find("<!-- client-example -->\n```sh\n")
        .expect("docs/client.md has a <!-- client-example --> marker before a ```sh block");
    let body = &CLIENT_DOC[start + "<!-- client-example -->\n```sh\n".len()..];
    let end = body
        .find("```\n<!-- /client-example -->")
        .expect("the example ends with ``` and <!-- /client-example -->");
    &body[..end]
}

#[test]
fn the_documented_client_example_runs_as_written() {
    let server = Server::bare("readme", "");
    let script = server.dir.join("example.sh");
    std::fs::write(&script, example()).unwrap();
    let bins = [
        server_bin().parent().unwrap().to_path_buf(),
        std::path::Path::new(CLIENT).parent().unwrap().to_path_buf(),
    ];
    let path = std::env::join_paths(bins.iter().cloned().chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let out = run(
        Command::new("timeout")
            .args(["60", "sh", script.to_str().unwrap()])
            .current_dir(&server.dir)
            .env("PATH", path)
            .env("OPENPUSH_URL", server.url())
            .env("XDG_STATE_HOME", server.dir.join("xdg")),
        "",
    );
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    let sent = lines
        .windows(3)
        .find(|w| w[0] == "201 Created" && w[2] == "TTL: 86400")
        .unwrap_or_else(|| panic!("{stdout}"));
    let name = sent[1].strip_prefix("Location: /message/").unwrap_or("");
    assert!(
        name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("backups/1 (high): Backup done: 12 GB\n"),
        "{stdout}"
    );
    assert!(server.dir.join("xdg/openpush-client/client.json").exists());
}

//! Command-line interface. The doc comments are the `--help` text.

// In help text, `[:port]` is an optional part of a URL, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

use argh::FromArgs;

/// openpush-client: receive end-to-end encrypted pushes from an openpush server on this
/// machine, and send Web Push messages (RFC 8291, RFC 8292) to any push service.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Register(Register),
    Listen(Listen),
    Send(Send),
    VapidKeygen(VapidKeygen),
}

/// Create or reuse this device on the server, register an application on it with a new
/// key pair and auth secret, and print its standard Web Push subscription JSON (endpoint,
/// keys.p256dh, keys.auth) for the webservice.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "register")]
pub struct Register {
    /// the server, http://host[:port] (https needs a TLS-terminating proxy in front of
    /// this client, see docs/client.md)
    #[argh(option, arg_name = "URL")]
    pub server: String,
    /// the user that owns the device (asked for its password unless the device is known)
    #[argh(option, arg_name = "NAME")]
    pub user: String,
    /// read the user's password from the first line of standard input
    #[argh(switch)]
    pub password_stdin: bool,
    /// the device (OpenPush client) name; an existing device of that name is reused
    #[argh(option, arg_name = "NAME")]
    pub device: String,
    /// the application (registration id) to register, e.g. "backups"
    #[argh(option, arg_name = "ID")]
    pub app: String,
    /// where keys and state live (default $XDG_STATE_HOME/openpush-client,
    /// or ~/.local/state/openpush-client)
    #[argh(option, arg_name = "DIR")]
    pub state_dir: Option<String>,
}

/// Hold the device's stream: decrypt each message and hand it to CMD (plaintext on stdin;
/// OPENPUSH_APP, OPENPUSH_ID, OPENPUSH_URGENCY in its environment) or print it as one JSON
/// line. A message is confirmed to the server only once CMD exited 0 (or the line is
/// written); one that fails comes again after a back-off.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "listen")]
pub struct Listen {
    /// where keys and state live (default $XDG_STATE_HOME/openpush-client,
    /// or ~/.local/state/openpush-client)
    #[argh(option, arg_name = "DIR")]
    pub state_dir: Option<String>,
    /// a shell command run (sh -c) for each message
    #[argh(option, arg_name = "CMD")]
    pub exec: Option<String>,
    /// reconnect when nothing, not even a keepalive, arrived for this long (default 75;
    /// the server's keepalive_secs is 25 by default, at most 59)
    #[argh(option, default = "75")]
    pub watchdog_secs: u64,
    /// the longest wait between reconnects (default 300)
    #[argh(option, default = "300")]
    pub max_backoff_secs: u64,
}

/// Send a push. With --subscription: encrypt (aes128gcm) the message in FILE (or standard
/// input for - or nothing) for a Web Push subscription and post it to its endpoint,
/// optionally VAPID-signed; prints the status and Location. With --server and --token:
/// post the JSON object given as the argument as an OpenPush v0.1 message.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "send")]
pub struct Send {
    /// a file with the subscription JSON (endpoint and keys), - for stdin
    #[argh(option, arg_name = "FILE")]
    pub subscription: Option<String>,
    /// the app server's VAPID private key (PEM, as vapid-keygen writes it)
    #[argh(option, arg_name = "FILE")]
    pub vapid_key: Option<String>,
    /// the VAPID contact, mailto:… or https://…
    #[argh(option, arg_name = "SUBJECT")]
    pub subject: Option<String>,
    /// seconds the push service keeps the message for an offline device
    #[argh(option, arg_name = "N")]
    pub ttl: Option<u64>,
    /// very-low, low, normal or high (OpenPush: normal or high)
    #[argh(option, arg_name = "U")]
    pub urgency: Option<String>,
    /// a topic (collapse key): replaces an undelivered message with the same topic
    #[argh(option, arg_name = "T")]
    pub topic: Option<String>,
    /// an openpush server, http://host[:port], for an OpenPush v0.1 message
    #[argh(option, arg_name = "URL")]
    pub server: Option<String>,
    /// the application's routing token, for an OpenPush v0.1 message
    #[argh(option, arg_name = "TOKEN")]
    pub token: Option<String>,
    /// the message: a file or - (stdin) for Web Push; a JSON object for OpenPush
    #[argh(positional, arg_name = "FILE|-|JSON")]
    pub message: Option<String>,
}

/// Write a new VAPID key pair (P-256, PKCS#8 PEM, mode 0600) to FILE and print its public
/// key (base64url), which subscribers pass as applicationServerKey.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "vapid-keygen")]
pub struct VapidKeygen {
    /// where to write the private key; an existing file is not overwritten
    #[argh(option, arg_name = "FILE")]
    pub out: String,
}

/// The switches: every other `--name` takes a value.
const SWITCHES: [&str; 3] = ["--password-stdin", "--version", "--help"];

/// argh reads a lone `-` as an unknown flag; the convention is "standard input". A `-`
/// that is no option's value moves behind a `--`, where argh takes it as the positional.
pub fn stdin_positional(args: Vec<String>) -> Vec<String> {
    if args.iter().any(|a| a == "--") {
        return args;
    }
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut positional = false;
    for (i, arg) in args.iter().enumerate() {
        let is_value = i > 0 && {
            let prev = &args[i - 1];
            prev.starts_with("--") && !SWITCHES.contains(&prev.as_str())
        };
        if arg == "-" && !is_value {
            positional = true;
        } else {
            out.push(arg.clone());
        }
    }
    if positional {
        out.extend(["--".to_owned(), "-".to_owned()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, argh::EarlyExit> {
        let args = stdin_positional(args.iter().map(|a| (*a).to_owned()).collect());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Cli::from_args(&["openpush-client"], &args)
    }

    #[test]
    fn commands_keep_their_names() {
        let cli = parse(&[
            "register", "--server", "http://h", "--user", "u", "--device", "d", "--app", "a",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Register(r)) if !r.password_stdin));
        let cli = parse(&["listen", "--exec", "cat"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Listen(l)) if l.watchdog_secs == 75));
        let cli = parse(&["send", "--subscription", "s.json", "--ttl", "60", "-"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Send(s)) if s.message.as_deref() == Some("-")));
        let cli = parse(&["send", "-", "--subscription", "-"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Send(s))
            if s.message.as_deref() == Some("-") && s.subscription.as_deref() == Some("-")));
        assert!(parse(&["vapid-keygen", "--out", "k.pem"]).is_ok());
        assert!(parse(&["register", "--server", "http://h"]).is_err());
        assert!(parse(&["vapid-keygen"]).is_err());
    }
}

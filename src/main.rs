//! openpush: a small, self-hosted push server (OpenPush v0.1 API) for routers and Pis.
//!
//! `main` parses arguments, builds the configuration, sets up logging and dispatches;
//! exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use argh::{EarlyExit, FromArgs};

use openpush::cli::{self, ClientAction, Command, TokenAction, TopicAction, UserAction};
use openpush::config::{self, Config};
use openpush::{auth, commands, control, logger, secret, server, store};

/// A password shorter than this gets a warning when the server is reachable from other hosts.
const SHORT_PASSWORD_CHARS: usize = 8;

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.version {
        println!(
            "openpush {} (OpenPush API {})",
            env!("CARGO_PKG_VERSION"),
            openpush::API_VERSION
        );
        return ExitCode::SUCCESS;
    }
    let result = match cli.command {
        Some(Command::Serve(serve)) => run_server(serve),
        Some(Command::User(user)) => user_command(user.action).and_then(run_admin),
        Some(Command::Client(client)) => run_admin(client_command(client.action)),
        Some(Command::Topic(topic)) => run_admin(topic_command(topic.action)),
        Some(Command::Token(token)) => run_admin(token_command(token.action)),
        None => Err(Failure::Usage(
            "missing command: try `openpush serve` or `openpush --help`".into(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("openpush: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("openpush: {e}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Runtime(String),
}

/// Parses the command line like `argh::from_env`, but a usage error exits with status 2
/// (as docs/administration.md promises), not argh's 1. `--help` prints to stdout and exits 0.
fn parse_args() -> Result<cli::Cli, ExitCode> {
    let mut args = Vec::new();
    for arg in std::env::args_os() {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(arg) => {
                eprintln!(
                    "openpush: an argument is not valid UTF-8: {}",
                    arg.to_string_lossy()
                );
                return Err(ExitCode::from(2));
            }
        }
    }
    let command = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("openpush")
        .to_owned();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match cli::Cli::from_args(&[&command], &rest) {
        Ok(cli) => Ok(cli),
        Err(EarlyExit {
            output,
            status: Ok(()),
        }) => {
            println!("{output}");
            Err(ExitCode::SUCCESS)
        }
        Err(EarlyExit {
            output,
            status: Err(()),
        }) => {
            eprintln!(
                "{}\nRun {command} --help for more information.",
                output.trim_end()
            );
            Err(ExitCode::from(2))
        }
    }
}

fn load_config(config: Option<&str>, db: Option<&str>) -> Result<Config, Failure> {
    let mut cfg = match config {
        Some(path) => {
            Config::load(PathBuf::from(path).as_path()).map_err(|e| Failure::Usage(e.0))?
        }
        None => Config::default(),
    };
    if let Some(db) = db {
        cfg.db = PathBuf::from(db);
    }
    Ok(cfg)
}

/// The server's configuration: the file, then the command-line flags over it.
fn serve_config(args: &cli::Serve) -> Result<Config, Failure> {
    let mut cfg = load_config(args.config.as_deref(), args.db.as_deref())?;
    if !args.listen.is_empty() {
        cfg.listen = args
            .listen
            .iter()
            .map(|a| config::parse_addr(a))
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Usage(e.0))?;
    }
    if let Some(level) = &args.log_level {
        cfg.set("log_level", level)
            .map_err(|e| Failure::Usage(e.0))?;
    }
    cfg.validate().map_err(|e| Failure::Usage(e.0))?;
    Ok(cfg)
}

fn run_server(args: cli::Serve) -> Result<(), Failure> {
    let cfg = serve_config(&args)?;
    if args.check {
        print!("{}", cfg.to_text());
        return Ok(());
    }
    logger::init(cfg.log_level);
    // A start that fails (the port is taken, say) must not leave behind a database file
    // it created: the next start, or the CLI, would take the empty file for the real one.
    let db = cfg.db.clone();
    let created = !db.exists();
    let remove_created = || {
        if created {
            let _ = std::fs::remove_file(&db);
        }
    };
    let store = store::open(&cfg.db, &cfg.store_options()).map_err(|e| {
        remove_created();
        Failure::Runtime(open_error_text(&cfg.db, e))
    })?;
    log::info!(
        "openpush {} using {}",
        env!("CARGO_PKG_VERSION"),
        cfg.store_shown()
    );
    let reload = Box::new(move || {
        serve_config(&args).map_err(|e| match e {
            Failure::Usage(e) | Failure::Runtime(e) => e,
        })
    });
    let result = server::run(cfg, store, reload);
    // The control socket file goes with the server, however it ended.
    control::remove_bound();
    // `server::run` fails only before it serves, so nothing was stored in a new file.
    result.map_err(|e| {
        remove_created();
        Failure::Runtime(e)
    })
}

fn open_error_text(db: &std::path::Path, e: store::OpenError) -> String {
    match e {
        store::OpenError::Locked => format!(
            "{} is in use by another openpush process (only one server may use a database)",
            db.display()
        ),
        other => other.to_string(),
    }
}

fn read_password(from_stdin: bool) -> Result<String, Failure> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Runtime(format!("cannot read the password from stdin: {e}")))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ").map_err(|e| {
            Failure::Usage(format!(
                "cannot prompt for a password ({e}); use --password-stdin"
            ))
        })?;
        let again = rpassword::prompt_password("Repeat password: ")
            .map_err(|e| Failure::Usage(format!("cannot prompt for a password: {e}")))?;
        if first != again {
            return Err(Failure::Usage("the passwords differ".into()));
        }
        first
    };
    if password.is_empty() || password.len() > auth::MAX_PASSWORD_BYTES {
        return Err(Failure::Usage(format!(
            "the password must be 1 to {} bytes",
            auth::MAX_PASSWORD_BYTES
        )));
    }
    Ok(password)
}

/// Where an administration command finds its database: the flags every such subcommand has.
struct Target {
    config: Option<String>,
    db: Option<String>,
}

impl Target {
    fn of(config: Option<String>, db: Option<String>) -> Target {
        Target { config, db }
    }

    fn load_config(&self) -> Result<Config, Failure> {
        load_config(self.config.as_deref(), self.db.as_deref())
    }
}

fn user_command(action: UserAction) -> Result<(commands::Command, Target), Failure> {
    Ok(match action {
        UserAction::Add(a) => {
            let target = Target::of(a.config, a.db);
            let password_hash = new_password_hash(a.password_stdin, &target)?;
            let cmd = commands::Command::UserAdd {
                name: a.name,
                password_hash,
                admin: a.admin,
            };
            (cmd, target)
        }
        UserAction::List(a) => (commands::Command::UserList, Target::of(a.config, a.db)),
        UserAction::Passwd(a) => {
            let target = Target::of(a.config, a.db);
            let password_hash = new_password_hash(a.password_stdin, &target)?;
            let cmd = commands::Command::UserPasswd {
                name: a.name,
                password_hash,
            };
            (cmd, target)
        }
        UserAction::Del(a) => (
            commands::Command::UserDel { name: a.name },
            Target::of(a.config, a.db),
        ),
    })
}

fn client_command(action: ClientAction) -> (commands::Command, Target) {
    match action {
        ClientAction::Add(a) => (
            commands::Command::ClientAdd {
                user: a.user,
                name: a.name,
            },
            Target::of(a.config, a.db),
        ),
        ClientAction::List(a) => (
            commands::Command::ClientList { user: a.user },
            Target::of(a.config, a.db),
        ),
        ClientAction::Del(a) => (
            commands::Command::ClientDel {
                user: a.user,
                name: a.name,
            },
            Target::of(a.config, a.db),
        ),
    }
}

fn topic_command(action: TopicAction) -> (commands::Command, Target) {
    match action {
        TopicAction::List(a) => (
            commands::Command::TopicList { user: a.user },
            Target::of(a.config, a.db),
        ),
        TopicAction::Grant(a) => (
            commands::Command::TopicGrant {
                topic: a.topic,
                user: a.user,
                read: a.read,
                write: a.write,
            },
            Target::of(a.config, a.db),
        ),
        TopicAction::Del(a) => (
            commands::Command::TopicDel { topic: a.topic },
            Target::of(a.config, a.db),
        ),
    }
}

fn token_command(action: TokenAction) -> (commands::Command, Target) {
    match action {
        TokenAction::List(a) => (
            commands::Command::TokenList { user: a.user },
            Target::of(a.config, a.db),
        ),
        TokenAction::Del(a) => (
            commands::Command::TokenDel {
                user: a.user,
                name: a.token,
            },
            Target::of(a.config, a.db),
        ),
    }
}

/// Reads a new password (warning when it is short) and hashes it: only the hash goes on.
fn new_password_hash(from_stdin: bool, target: &Target) -> Result<String, Failure> {
    let password = read_password(from_stdin)?;
    warn_if_short(&password, target);
    Ok(secret::hash_password(&password))
}

/// Runs an administration command and prints its output.
fn run_admin((cmd, target): (commands::Command, Target)) -> Result<(), Failure> {
    let output = administer(&cmd, &target)?;
    match cmd {
        // A script reads the bare key; a person is told what it is.
        commands::Command::ClientAdd { user, name } if std::io::stdout().is_terminal() => {
            println!(
                "created client {name:?} for {user}; its key (enter it in the phone's push client):\n{output}"
            );
        }
        _ => println!("{output}"),
    }
    Ok(())
}

/// Warns (and goes on) when a password is trivially short and the server listens on more
/// than loopback, where anyone on the network can try passwords.
fn warn_if_short(password: &str, target: &Target) {
    let chars = password.chars().count();
    if chars >= SHORT_PASSWORD_CHARS {
        return;
    }
    let Ok(mut cfg) = target.load_config() else {
        return;
    };
    if cfg.validate().is_err() {
        return;
    }
    if let Some(addr) = cfg.listen.iter().find(|a| !a.ip().is_loopback()) {
        eprintln!(
            "openpush: warning: this password has only {chars} characters, and the server \
             listens on {addr}, beyond this machine: anyone who can reach it may guess it; \
             use at least {SHORT_PASSWORD_CHARS}"
        );
    }
}

/// Runs an administration command through the running server's control socket, or on
/// the database directly when no server runs; returns its output.
fn administer(cmd: &commands::Command, target: &Target) -> Result<String, Failure> {
    let cfg = target.load_config()?;
    let socket = cfg.control_socket_path();
    let reply = match control::call(&socket, cmd).map_err(Failure::Runtime)? {
        Some(reply) => reply,
        None => {
            let store = match store::open(&cfg.db, &cfg.store_options()) {
                Ok(store) => store,
                Err(store::OpenError::Locked) => {
                    return Err(Failure::Runtime(format!(
                        "{} is held by a running openpush, but its control socket {} does not answer; \
                         run the command as the service user or stop the server",
                        cfg.db.display(),
                        socket.display()
                    )));
                }
                Err(e) => return Err(Failure::Runtime(open_error_text(&cfg.db, e))),
            };
            match async_io::block_on(commands::execute(&store, cmd.clone(), &cfg.limits)) {
                Ok((output, _)) => commands::Reply { ok: true, output },
                Err(output) => commands::Reply { ok: false, output },
            }
        }
    };
    if reply.ok {
        Ok(reply.output)
    } else {
        Err(Failure::Runtime(reply.output))
    }
}

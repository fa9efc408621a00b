//! openpush: a small, self-hosted push server (OpenPush v0.1 API) for routers and Pis.
//!
//! `main` parses arguments, builds the configuration, sets up logging and dispatches;
//! exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use argh::{EarlyExit, FromArgs};

use openpush::cli::{self, ClientAction, Command, TopicAction, UserAction};
use openpush::config::{self, Config};
use openpush::{api, auth, commands, control, logger, secret, server, store};

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
            api::API_VERSION
        );
        return ExitCode::SUCCESS;
    }
    let result = match cli.command {
        Some(Command::Serve(serve)) => run_server(serve),
        Some(Command::User(user)) => run_user(user.action),
        Some(Command::Client(client)) => run_client(client.action),
        Some(Command::Topic(topic)) => run_topic(topic.action),
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
/// (as the README promises), not argh's 1. `--help` prints to stdout and exits 0.
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
    let store = store::open(&cfg.db, cfg.db_cache_bytes, cfg.limits.store_queue).map_err(|e| {
        remove_created();
        Failure::Runtime(open_error_text(&cfg.db, e))
    })?;
    log::info!(
        "openpush {} using {}",
        env!("CARGO_PKG_VERSION"),
        cfg.db.display()
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

fn run_user(action: UserAction) -> Result<(), Failure> {
    let (cmd, config, db) = match action {
        UserAction::Add(a) => {
            let password = read_password(a.password_stdin)?;
            warn_if_short(&password, a.config.as_deref(), a.db.as_deref());
            let hash = secret::hash_password(&password);
            let cmd = commands::Command {
                op: "user_add".into(),
                name: Some(a.name),
                password_hash: Some(hash),
                admin: Some(a.admin),
                ..Default::default()
            };
            (cmd, a.config, a.db)
        }
        UserAction::List(a) => (
            commands::Command {
                op: "user_list".into(),
                ..Default::default()
            },
            a.config,
            a.db,
        ),
        UserAction::Passwd(a) => {
            let password = read_password(a.password_stdin)?;
            warn_if_short(&password, a.config.as_deref(), a.db.as_deref());
            let hash = secret::hash_password(&password);
            let cmd = commands::Command {
                op: "user_passwd".into(),
                name: Some(a.name),
                password_hash: Some(hash),
                ..Default::default()
            };
            (cmd, a.config, a.db)
        }
        UserAction::Del(a) => (
            commands::Command {
                op: "user_del".into(),
                name: Some(a.name),
                ..Default::default()
            },
            a.config,
            a.db,
        ),
    };
    println!("{}", administer(cmd, config.as_deref(), db.as_deref())?);
    Ok(())
}

/// Warns (and goes on) when a password is trivially short and the server listens on more
/// than loopback, where anyone on the network can try passwords.
fn warn_if_short(password: &str, config: Option<&str>, db: Option<&str>) {
    let chars = password.chars().count();
    if chars >= SHORT_PASSWORD_CHARS {
        return;
    }
    let Ok(mut cfg) = load_config(config, db) else {
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

fn run_client(action: ClientAction) -> Result<(), Failure> {
    let (cmd, config, db) = match action {
        ClientAction::Add(a) => {
            let (user, name) = (a.user.clone(), a.name.clone());
            let cmd = commands::Command {
                op: "client_add".into(),
                user: Some(a.user),
                name: Some(a.name),
                ..Default::default()
            };
            let key = administer(cmd, a.config.as_deref(), a.db.as_deref())?;
            // A script reads the bare key; a person is told what it is.
            if std::io::stdout().is_terminal() {
                println!(
                    "created client {name:?} for {user}; its key (enter it in the phone's push client):\n{key}"
                );
            } else {
                println!("{key}");
            }
            return Ok(());
        }
        ClientAction::List(a) => (
            commands::Command {
                op: "client_list".into(),
                user: a.user,
                ..Default::default()
            },
            a.config,
            a.db,
        ),
        ClientAction::Del(a) => (
            commands::Command {
                op: "client_del".into(),
                user: Some(a.user),
                name: Some(a.name),
                ..Default::default()
            },
            a.config,
            a.db,
        ),
    };
    println!("{}", administer(cmd, config.as_deref(), db.as_deref())?);
    Ok(())
}

fn run_topic(action: TopicAction) -> Result<(), Failure> {
    let (cmd, config, db) = match action {
        TopicAction::List(a) => (
            commands::Command {
                op: "topic_list".into(),
                user: a.user,
                ..Default::default()
            },
            a.config,
            a.db,
        ),
        TopicAction::Grant(a) => (
            commands::Command {
                op: "topic_grant".into(),
                name: Some(a.topic),
                user: Some(a.user),
                read: Some(a.read),
                write: Some(a.write),
                ..Default::default()
            },
            a.config,
            a.db,
        ),
        TopicAction::Del(a) => (
            commands::Command {
                op: "topic_del".into(),
                name: Some(a.topic),
                ..Default::default()
            },
            a.config,
            a.db,
        ),
    };
    println!("{}", administer(cmd, config.as_deref(), db.as_deref())?);
    Ok(())
}

/// Runs an administration command through the running server's control socket, or on
/// the database directly when no server runs; returns its output.
fn administer(
    cmd: commands::Command,
    config: Option<&str>,
    db: Option<&str>,
) -> Result<String, Failure> {
    let cfg = load_config(config, db)?;
    let socket = cfg.control_socket_path();
    let reply = match control::call(&socket, &cmd).map_err(Failure::Runtime)? {
        Some(reply) => reply,
        None => {
            let store = match store::open(&cfg.db, cfg.db_cache_bytes, cfg.limits.store_queue) {
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
            match async_io::block_on(commands::execute(&store, cmd, &cfg.limits)) {
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

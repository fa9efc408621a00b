//! `openpush-client`: the push client (`register`, `listen`) and the Web Push sender (`send`,
//! `vapid-keygen`). This file parses arguments and maps failures to exit codes: 0 success,
//! 1 a failure at run time, 2 bad usage.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use argh::{EarlyExit, FromArgs};
use openpush_client::{Failure, cli, listen, register, send};

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.version {
        println!("openpush-client {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let result = match cli.command {
        None => Err(Failure::usage(
            "a command is needed: register, listen, send or vapid-keygen (see --help)",
        )),
        Some(cli::Command::Register(args)) => register::run(&args),
        Some(cli::Command::Listen(args)) => listen::run(&args),
        Some(cli::Command::Send(args)) => send::run(&args),
        Some(cli::Command::VapidKeygen(args)) => send::vapid_keygen(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("openpush-client: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("openpush-client: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Like `argh::from_env`, but a usage error exits with status 2, not argh's 1; `--help`
/// prints to stdout and exits 0.
fn parse_args() -> Result<cli::Cli, ExitCode> {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(arg) => {
                eprintln!(
                    "openpush-client: an argument is not valid UTF-8: {}",
                    arg.to_string_lossy()
                );
                return Err(ExitCode::from(2));
            }
        }
    }
    let args = cli::stdin_positional(args);
    let rest: Vec<&str> = args.iter().map(String::as_str).collect();
    match cli::Cli::from_args(&["openpush-client"], &rest) {
        Ok(cli) => Ok(cli),
        Err(EarlyExit {
            output,
            status: Ok(()),
        }) => {
            // `--help | head` closes the pipe early: not worth a panic.
            let _ = writeln!(std::io::stdout(), "{output}");
            Err(ExitCode::SUCCESS)
        }
        Err(EarlyExit {
            output,
            status: Err(()),
        }) => {
            eprintln!(
                "{}\nRun openpush-client --help for more information.",
                output.trim_end()
            );
            Err(ExitCode::from(2))
        }
    }
}

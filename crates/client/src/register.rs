//! `register`: this device on the server (created, or reused by name), an application on it
//! with a fresh subscription key pair and auth secret, all kept in the state directory, and
//! the subscription JSON printed for the webservice.
//!
//! Running it again for a known application prints the same subscription. An application
//! that the server knows but whose keys are not here (another state directory, a lost one)
//! is registered anew: its old routing token, and so its old endpoint, stop working (`404`
//! to senders, who then drop it) rather than deliver what nobody can decrypt.

use std::io::BufRead;

use miniserde::Deserialize;
use openpush_wire::base64;
use openpush_wire::json::{self, Subscription, SubscriptionKeys};
use openpush_wire::url::Url;

use crate::cli::Register;
use crate::state::{App, State, StateDir};
use crate::{Failure, keys, net};

#[derive(Deserialize)]
struct ClientView {
    name: String,
    token: String,
}

#[derive(Deserialize)]
struct AppView {
    registration_id: String,
    routing_token: String,
    endpoint: Option<String>,
}

pub fn run(args: &Register) -> Result<(), Failure> {
    let server = net::parse_url(&args.server, "--server")?;
    if args.app.is_empty() || args.device.is_empty() || args.user.is_empty() {
        return Err(Failure::usage(
            "--user, --device and --app must not be empty",
        ));
    }
    let dir = StateDir::open(args.state_dir.as_deref())?;
    let mut password = None;
    if args.password_stdin {
        password = Some(read_password_line()?);
    }
    let mut state = device_state(args, &server, &dir, password)?;
    let app = app_keys(args, &server, &state)?;
    state.apps.retain(|a| a.id != app.id);
    state.apps.push(app.clone());
    dir.save(&state)?;
    let subscription = Subscription {
        endpoint: app.endpoint,
        keys: SubscriptionKeys {
            p256dh: app.p256dh,
            auth: app.auth,
        },
    };
    println!("{}", miniserde::json::to_string(&subscription));
    Ok(())
}

/// The device's state: the one in the state directory while the server still knows its
/// key, else a device found or created on the server with the user's password (asked for
/// unless it came on stdin).
fn device_state(
    args: &Register,
    server: &Url,
    dir: &StateDir,
    mut password: Option<String>,
) -> Result<State, Failure> {
    Ok(match dir.load()? {
        Some(state) if state.server != args.server || state.device != args.device => {
            return Err(Failure::usage(format!(
                "{} belongs to device {:?} on {}; use another --state-dir for {:?} on {}",
                dir.path.display(),
                state.device,
                state.server,
                args.device,
                args.server
            )));
        }
        Some(state) if device_is_known(server, &state.key)? => state,
        old => {
            let password = match password.take() {
                Some(p) => p,
                None => prompt_password(&args.user)?,
            };
            let key = find_or_create_device(server, &args.user, &password, &args.device)?;
            let apps = old
                .filter(|s| s.key == key)
                .map(|s| s.apps)
                .unwrap_or_default();
            State {
                server: args.server.clone(),
                user: args.user.clone(),
                device: args.device.clone(),
                key,
                apps,
            }
        }
    })
}

/// The app's keys and endpoint: those kept while the server has the same app, else a new
/// registration (replacing one made without keys here) with new keys.
fn app_keys(args: &Register, server: &Url, state: &State) -> Result<App, Failure> {
    let on_server = list_apps(server, &state.key)?;
    let known = state.app(&args.app).cloned();
    Ok(
        match (
            known,
            on_server.iter().find(|a| a.registration_id == args.app),
        ) {
            (Some(app), Some(remote)) if app.routing_token == remote.routing_token => app,
            (_, remote) => {
                if remote.is_some() {
                    eprintln!(
                        "openpush-client: {:?} was registered without keys here: registering it anew \
                     (its old endpoint stops working)",
                        args.app
                    );
                    delete_app(server, &state.key, &args.app)?;
                }
                let registered = register_app(server, &state.key, &args.app)?;
                let key = keys::generate();
                App {
                    id: args.app.clone(),
                    endpoint: registered.endpoint.unwrap_or_else(|| {
                        let push = server.join(&format!("/push/{}", registered.routing_token));
                        format!("{}{}", push.origin(), push.path)
                    }),
                    routing_token: registered.routing_token,
                    private_key: keys::private_b64(&key),
                    p256dh: keys::public_b64(&key),
                    auth: base64::encode_url(&keys::random::<16>()),
                }
            }
        },
    )
}

fn read_password_line() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::runtime(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(Failure::usage(
            "--password-stdin: standard input has no password line",
        ));
    }
    Ok(password)
}

fn prompt_password(user: &str) -> Result<String, Failure> {
    rpassword::prompt_password(format!("Password for {user}: ")).map_err(|e| {
        Failure::usage(format!(
            "cannot ask for the password ({e}): give it on standard input with --password-stdin"
        ))
    })
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::encode(format!("{user}:{password}").as_bytes())
    )
}

/// Whether the server still accepts this device key.
fn device_is_known(server: &Url, key: &str) -> Result<bool, Failure> {
    let r = net::request(
        &server.join("/application"),
        "GET",
        &[("X-Openpush-Key", key)],
        b"",
    )?;
    match r.head.status {
        200 => Ok(true),
        401 => {
            eprintln!(
                "openpush-client: the server no longer knows this device's key: creating it again"
            );
            Ok(false)
        }
        _ => Err(Failure::runtime(format!(
            "checking the device: {}",
            net::explain(&r)
        ))),
    }
}

/// The key of the user's device named `device`, created if there is none.
fn find_or_create_device(
    server: &Url,
    user: &str,
    password: &str,
    device: &str,
) -> Result<String, Failure> {
    let auth = basic(user, password);
    let r = net::request(
        &server.join("/client"),
        "GET",
        &[("Authorization", &auth)],
        b"",
    )?;
    if r.head.status == 401 {
        return Err(Failure::runtime(format!(
            "the server refused user {user:?} with that password (401): check both"
        )));
    }
    let r = net::expect_status(r, &[200], "listing devices")?;
    let clients: Vec<ClientView> = miniserde::json::from_str(&r.text())
        .map_err(|_| Failure::runtime("the server's device list is not OpenPush JSON"))?;
    if let Some(client) = clients.into_iter().find(|c| c.name == device) {
        return Ok(client.token);
    }
    let body = format!("{{\"name\":{}}}", json::quote(device));
    let r = net::request(
        &server.join("/client"),
        "POST",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )?;
    let r = net::expect_status(r, &[201], &format!("creating device {device:?}"))?;
    json::string_field(&r.text(), "token")
        .ok_or_else(|| Failure::runtime("the server's answer has no device key"))
}

fn list_apps(server: &Url, key: &str) -> Result<Vec<AppView>, Failure> {
    let r = net::request(
        &server.join("/application"),
        "GET",
        &[("X-Openpush-Key", key)],
        b"",
    )?;
    let r = net::expect_status(r, &[200], "listing applications")?;
    miniserde::json::from_str(&r.text())
        .map_err(|_| Failure::runtime("the server's application list is not OpenPush JSON"))
}

fn register_app(server: &Url, key: &str, app: &str) -> Result<AppView, Failure> {
    let body = format!("{{\"registration_id\":{}}}", json::quote(app));
    let r = net::request(
        &server.join("/application"),
        "POST",
        &[
            ("X-Openpush-Key", key),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )?;
    let r = net::expect_status(r, &[201], &format!("registering {app:?}"))?;
    miniserde::json::from_str(&r.text())
        .map_err(|_| Failure::runtime("the server's registration answer is not OpenPush JSON"))
}

fn delete_app(server: &Url, key: &str, app: &str) -> Result<(), Failure> {
    let path = format!("/application/{}", net::encode_segment(app));
    let r = net::request(
        &server.join(&path),
        "DELETE",
        &[("X-Openpush-Key", key)],
        b"",
    )?;
    net::expect_status(r, &[204, 200], &format!("replacing {app:?}"))?;
    Ok(())
}

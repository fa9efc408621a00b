//! The state directory: who this device is and the keys of its applications.
//!
//! Layout (the directory 0700, every file 0600, each replaced atomically: written to a
//! temporary file, fsynced, renamed over the old one, and the directory fsynced):
//! - `client.json`: the server, user, device name and key, and per application its
//!   registration id, routing token, endpoint, P-256 private and public key and auth secret;
//! - `last-event-id`: the id of the last message handed on and confirmed, in decimal. It
//!   only grows; `listen` sends it as `Last-Event-ID`, which tells the server to drop every
//!   message up to it;
//! - `lock`: held (`flock`) by the one `listen` that may use this directory.
//!
//! Nothing here is ever written partly: a crash leaves the old file or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use miniserde::{Deserialize, Serialize};

use crate::Failure;

const CLIENT_FILE: &str = "client.json";
const LAST_ID_FILE: &str = "last-event-id";
const LOCK_FILE: &str = "lock";

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct State {
    /// The server as given to `register`: `http://host[:port]`.
    pub server: String,
    pub user: String,
    pub device: String,
    /// The device's key (`X-Openpush-Key`).
    pub key: String,
    pub apps: Vec<App>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct App {
    /// The registration id.
    pub id: String,
    pub routing_token: String,
    pub endpoint: String,
    /// The subscription's P-256 private key, its scalar in base64url.
    pub private_key: String,
    /// Its public key, the subscription's `p256dh`.
    pub p256dh: String,
    /// Its 16-byte auth secret, base64url.
    pub auth: String,
}

impl State {
    pub fn app(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.id == id)
    }
}

pub struct StateDir {
    pub path: PathBuf,
}

impl StateDir {
    /// The directory given, or the default; created (0700) if missing.
    pub fn open(dir: Option<&str>) -> Result<StateDir, Failure> {
        let path = match dir {
            Some(dir) => PathBuf::from(dir),
            None => default_dir()?,
        };
        if !path.is_dir() {
            fs::create_dir_all(&path).map_err(|e| {
                Failure::runtime(format!(
                    "cannot create the state directory {}: {e}",
                    path.display()
                ))
            })?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).map_err(|e| {
                Failure::runtime(format!("cannot set the mode of {}: {e}", path.display()))
            })?;
        }
        Ok(StateDir { path })
    }

    /// The device's state; `None` before the first `register`.
    pub fn load(&self) -> Result<Option<State>, Failure> {
        let file = self.path.join(CLIENT_FILE);
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Failure::runtime(format!(
                    "cannot read {}: {e}",
                    file.display()
                )));
            }
        };
        miniserde::json::from_str(&text).map(Some).map_err(|_| {
            Failure::runtime(format!(
                "{} is not a state file of openpush-client; move it away or use another --state-dir",
                file.display()
            ))
        })
    }

    pub fn save(&self, state: &State) -> Result<(), Failure> {
        self.write(CLIENT_FILE, miniserde::json::to_string(state).as_bytes())
    }

    /// The last confirmed message id; 0 when none was.
    pub fn last_id(&self) -> Result<u64, Failure> {
        let file = self.path.join(LAST_ID_FILE);
        match fs::read_to_string(&file) {
            Ok(text) => text.trim().parse().map_err(|_| {
                Failure::runtime(format!(
                    "{} does not hold a message id; remove it to get every queued message again",
                    file.display()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Failure::runtime(format!(
                "cannot read {}: {e}",
                file.display()
            ))),
        }
    }

    pub fn save_last_id(&self, id: u64) -> Result<(), Failure> {
        self.write(LAST_ID_FILE, format!("{id}\n").as_bytes())
    }

    /// Takes the directory's lock for a `listen`, or says who holds it.
    pub fn lock(&self) -> Result<File, Failure> {
        let path = self.path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Failure::runtime(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => Err(Failure::runtime(format!(
                "another openpush-client listen uses {}; stop it first (one stream per device)",
                self.path.display()
            ))),
            Err(fs::TryLockError::Error(e)) => Err(Failure::runtime(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), Failure> {
        write_atomic(&self.path, name, bytes).map_err(|e| {
            Failure::runtime(format!(
                "cannot write {}: {e}",
                self.path.join(name).display()
            ))
        })
    }
}

/// Replaces `dir/name` with `bytes` (mode 0600): temporary file, fsync, rename, fsync of
/// the directory, so a crash or power cut leaves the old content or the new.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Writes a new file (mode 0600) that must not exist yet.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn default_dir() -> Result<PathBuf, Failure> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(state) => PathBuf::from(state),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local/state"),
            None => {
                return Err(Failure::usage(
                    "neither XDG_STATE_HOME nor HOME is set: give --state-dir DIR",
                ));
            }
        },
    };
    Ok(base.join("openpush-client"))
}

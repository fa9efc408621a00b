//! The server's certificate: read from PEM files at start, read again on reload and when
//! the files change, and kept when a new one does not load.
//!
//! Invariant: [`Certificate::config`] always returns a configuration that loaded whole (a
//! chain and the private key that matches its first certificate). A connection keeps the
//! configuration it started with; a new certificate serves the connections that come after.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::ring::kx_group::{SECP256R1, X25519};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What is offered in ALPN: HTTP/1.1 only (no HTTP/2 here).
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// The two files: the certificate chain (leaf first) and its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// `tls_cert`: the chain, PEM.
    pub chain: PathBuf,
    /// `tls_key`: the private key, PEM.
    pub key: PathBuf,
}

/// What a file looked like when it was read, to tell when it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// The certificate in use, and where it is read from.
pub struct Certificate {
    paths: RefCell<Paths>,
    config: RefCell<Arc<ServerConfig>>,
    /// When the first certificate of `config`'s chain expires (Unix seconds), if readable.
    not_after: Cell<Option<u64>>,
    /// The files' stamps when `config` was loaded, or when loading them last failed.
    seen: Cell<[Option<Stamp>; 2]>,
}

impl Certificate {
    /// Loads the certificate; an error says which file and why.
    pub fn load(paths: Paths) -> Result<Certificate, String> {
        let seen = stamps(&paths);
        let (config, not_after) = server_config(&paths)?;
        log::info!("TLS certificate loaded from {}", paths.chain.display());
        Ok(Certificate {
            paths: RefCell::new(paths),
            config: RefCell::new(config),
            not_after: Cell::new(not_after),
            seen: Cell::new(seen),
        })
    }

    /// When the certificate in use expires (Unix seconds); `None` if that could not be read.
    pub fn not_after(&self) -> Option<u64> {
        self.not_after.get()
    }

    /// The configuration new connections use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.borrow().clone()
    }

    /// Loads the certificate again (a reload, perhaps from other files); on failure the
    /// one in use stays, with a log line.
    pub fn reload(&self, paths: Paths) {
        *self.paths.borrow_mut() = paths;
        self.load_again();
    }

    /// Loads the certificate again if either file changed since it was last read.
    pub fn reload_if_changed(&self) {
        if stamps(&self.paths.borrow()) != self.seen.get() {
            self.load_again();
        }
    }

    fn load_again(&self) {
        let paths = self.paths.borrow().clone();
        self.seen.set(stamps(&paths));
        match server_config(&paths) {
            Ok((config, not_after)) => {
                *self.config.borrow_mut() = config;
                self.not_after.set(not_after);
                log::info!("TLS certificate reloaded from {}", paths.chain.display());
            }
            Err(e) => log::error!("TLS certificate not reloaded, the old one stays: {e}"),
        }
    }
}

fn stamps(paths: &Paths) -> [Option<Stamp>; 2] {
    let stamp = |path: &Path| {
        std::fs::metadata(path).ok().map(|m| Stamp {
            modified: m.modified().ok(),
            len: m.len(),
        })
    };
    [stamp(&paths.chain), stamp(&paths.key)]
}

/// A TLS 1.2 and 1.3 configuration serving `paths`' certificate, with ring's ciphers, and
/// when that certificate expires.
fn server_config(paths: &Paths) -> Result<(Arc<ServerConfig>, Option<u64>), String> {
    let (chain, key) = read_pem(paths)?;
    let not_after = chain
        .first()
        .and_then(|leaf| super::validity::not_after(leaf));
    // ring is the provider that builds for MIPS; it has no post-quantum key exchange.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    // X25519 and P-256 only: every client offers one of them, and a client that would
    // rather take P-384 (about three times the CPU of a handshake) is asked for one of
    // these instead, at the cost of a round trip.
    provider.kx_groups = vec![X25519, SECP256R1];
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("{} and {}: {e}", paths.chain.display(), paths.key.display()))?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok((Arc::new(config), not_after))
}

fn read_pem(
    paths: &Paths,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let chain_pem = read(&paths.chain)?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", paths.chain.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in it",
            paths.chain.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&paths.key)?)
        .map_err(|e| format!("{}: no PEM private key in it ({e})", paths.key.display()))?;
    Ok((chain, key))
}

//! VAPID (RFC 8292): the app server's signed claim on a push, `Authorization: vapid
//! t=<JWT>,k=<public key>`. The JWT is ES256 (`r || s`, 64 bytes) over
//! `{"typ":"JWT","alg":"ES256"}` and `{"aud":<endpoint origin>,"exp":…,"sub":<contact>}`.
//!
//! Keys are stored as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form pywebpush's
//! `py_vapid` and npm `web-push` read; SEC1 PEM (`BEGIN EC PRIVATE KEY`) and a bare base64url
//! scalar are read too.

use openpush_wire::{base64, json};
use p256::SecretKey;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use crate::keys;

/// How long a token is valid: RFC 8292 allows at most 24 hours; 12 leaves room for skew.
pub const TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

/// The key as a PKCS#8 PEM document.
pub fn to_pem(key: &SecretKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF)
        .expect("a P-256 key encodes as PKCS#8")
        .to_string()
}

/// Reads a VAPID private key: PKCS#8 or SEC1 PEM, or a base64url scalar.
pub fn from_text(text: &str) -> Option<SecretKey> {
    let text = text.trim();
    if text.contains("BEGIN PRIVATE KEY") {
        SecretKey::from_pkcs8_pem(text).ok()
    } else if text.contains("BEGIN EC PRIVATE KEY") {
        SecretKey::from_sec1_pem(text).ok()
    } else {
        keys::parse_private(text)
    }
}

/// The `Authorization` header value for a push to an endpoint of `origin`. The parameters
/// are joined by a bare comma, as pywebpush writes them: py_vapid's verifier splits the
/// header at its last space and would not read `t=…, k=…`.
pub fn header(key: &SecretKey, origin: &str, subject: &str, now_secs: u64) -> String {
    let token = token(key, origin, subject, now_secs + TOKEN_LIFETIME_SECS);
    format!("vapid t={token},k={}", keys::public_b64(key))
}

/// A signed JWT with these claims.
pub fn token(key: &SecretKey, aud: &str, sub: &str, exp: u64) -> String {
    let header = base64::encode_url(br#"{"typ":"JWT","alg":"ES256"}"#);
    let claims = format!(
        "{{\"aud\":{},\"exp\":{exp},\"sub\":{}}}",
        json::quote(aud),
        json::quote(sub)
    );
    let signing_input = format!("{header}.{}", base64::encode_url(claims.as_bytes()));
    let signature: Signature = SigningKey::from(key).sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        base64::encode_url(&signature.to_bytes())
    )
}

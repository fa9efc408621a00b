//! P-256 keys and randomness, as Web Push encodes them: a public key is the uncompressed SEC1
//! point (65 bytes, `0x04 || x || y`), a private key its 32-byte scalar, both base64url
//! without padding in files and JSON. Randomness comes from the OS (`getrandom`) only.

use openpush_wire::base64;
use p256::{PublicKey, SecretKey};

/// The uncompressed point: 0x04, x, y.
pub const PUBLIC_KEY_BYTES: usize = 65;

/// `n` random bytes from the OS; the OS failing to give them is not something to go on from.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the OS random number generator is available");
    out
}

/// A fresh private key (a random scalar in range; out-of-range draws are redrawn).
pub fn generate() -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_slice(&random::<32>()) {
            return key;
        }
    }
}

/// The uncompressed point of `key`'s public key.
pub fn public_bytes(key: &SecretKey) -> Vec<u8> {
    key.public_key().to_sec1_bytes().into_vec()
}

pub fn public_b64(key: &SecretKey) -> String {
    base64::encode_url(&public_bytes(key))
}

/// A subscriber's or an app server's public key: an uncompressed point, base64url.
pub fn parse_public(text: &str) -> Option<PublicKey> {
    let raw = base64::decode(text.trim())?;
    if raw.len() != PUBLIC_KEY_BYTES || raw[0] != 4 {
        return None;
    }
    PublicKey::from_sec1_bytes(&raw).ok()
}

/// A private key as its 32-byte scalar, base64url.
pub fn parse_private(text: &str) -> Option<SecretKey> {
    SecretKey::from_slice(&base64::decode(text.trim())?).ok()
}

pub fn private_b64(key: &SecretKey) -> String {
    base64::encode_url(&key.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_as_web_push_writes_them() {
        let key = generate();
        let public = public_bytes(&key);
        assert_eq!(public.len(), PUBLIC_KEY_BYTES);
        assert_eq!(public[0], 4, "uncompressed point");
        assert_eq!(parse_public(&public_b64(&key)), Some(key.public_key()));
        assert_eq!(
            parse_private(&private_b64(&key)).unwrap().to_bytes(),
            key.to_bytes()
        );
        assert!(parse_public("BAAA").is_none());
    }
}

//! Secrets: client keys, routing tokens, ntfy access tokens and password hashes.
//!
//! Keys and tokens are 192 bits from the OS CSPRNG, URL-safe base64 (32 characters).
//! The store indexes them by a BLAKE2s digest so that a lookup's timing depends on the
//! digest, not the secret, and then compares the secret itself in constant time.
//! Passwords are stored as Argon2id with a per-password random salt, in a PHC string.

use base64ct::{Base64UrlUnpadded, Encoding};
use blake2::{Blake2s256, Digest};
use subtle::ConstantTimeEq;

const TOKEN_BYTES: usize = 24;
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// Argon2id cost for new passwords. 4 MiB and 3 passes: tens of milliseconds on a Pi, a few
/// hundred on an 880 MHz MIPS router; verification results are cached (see `auth`), so the
/// cost is paid once per client, not per request. Stored hashes carry their own parameters.
const ARGON2_M_KIB: u32 = 4096;
const ARGON2_T: u32 = 3;

/// Fresh random bytes from the OS. Failing to get entropy is not recoverable.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    bytes
}

/// A new client key or routing token.
pub fn new_token() -> String {
    Base64UrlUnpadded::encode_string(&random_bytes::<TOKEN_BYTES>())
}

/// Characters of an ntfy access token after its `tk_` (ntfy's own length, 32 in all).
const ACCESS_TOKEN_CHARS: usize = 29;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new ntfy access token: `tk_` and 29 letters and digits, each uniform from the OS
/// random generator (62^29, about 172 bits).
pub fn new_access_token() -> String {
    let mut out = String::with_capacity(3 + ACCESS_TOKEN_CHARS);
    out.push_str("tk_");
    while out.len() < 3 + ACCESS_TOKEN_CHARS {
        for byte in random_bytes::<32>() {
            // 248 = 4 × 62: rejecting the bytes above it keeps every character uniform.
            if byte < 248 && out.len() < 3 + ACCESS_TOKEN_CHARS {
                out.push(char::from(BASE62[usize::from(byte % 62)]));
            }
        }
    }
    out
}

/// Whether `text` could be a token of [`new_access_token`]; anything else names nothing.
pub fn is_access_token_shaped(text: &str) -> bool {
    text.len() == 3 + ACCESS_TOKEN_CHARS
        && text.starts_with("tk_")
        && text[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `text` could be a key or token of [`new_token`]: 32 URL-safe base64
/// characters. Anything else names nothing, and is refused before the store is asked.
pub fn is_token_shaped(text: &str) -> bool {
    text.len() == TOKEN_BYTES / 3 * 4
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The index key under which a secret is stored.
pub fn digest(secret: &[u8]) -> [u8; 32] {
    Blake2s256::digest(secret).into()
}

/// Whether `a` and `b` are equal, in a time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn argon2(m_kib: u32, t: u32) -> Option<argon2::Argon2<'static>> {
    let params = argon2::Params::new(m_kib, t, 1, Some(HASH_BYTES)).ok()?;
    Some(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// Hashes a password into `$argon2id$v=19$m=..,t=..,p=1$salt$hash`. Slow by design: never
/// call it on the event loop.
pub fn hash_password(password: &str) -> String {
    let salt = random_bytes::<SALT_BYTES>();
    let mut out = [0u8; HASH_BYTES];
    argon2(ARGON2_M_KIB, ARGON2_T)
        .expect("built-in Argon2 parameters are valid")
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .expect("built-in Argon2 parameters accept any password and this salt");
    format!(
        "$argon2id$v=19$m={ARGON2_M_KIB},t={ARGON2_T},p=1${}${}",
        base64ct::Base64Unpadded::encode_string(&salt),
        base64ct::Base64Unpadded::encode_string(&out)
    )
}

/// Checks a password against a stored hash. A malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Some((m, t, salt, expected)) = parse_phc(stored) else {
        return false;
    };
    let Some(argon) = argon2(m, t) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if argon
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .is_err()
    {
        return false;
    }
    constant_time_eq(&out, &expected)
}

/// Spends the same time as a real verification; used for unknown user names so that a
/// login's timing does not tell which names exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash_password("openpush-dummy"));
    let _ = verify_password(password, stored);
}

fn parse_phc(stored: &str) -> Option<(u32, u32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    if !parts.next()?.is_empty() || parts.next()? != "argon2id" || parts.next()? != "v=19" {
        return None;
    }
    let (mut m, mut t) = (None, None);
    for param in parts.next()?.split(',') {
        match param.split_once('=')? {
            ("m", v) => m = v.parse().ok(),
            ("t", v) => t = v.parse().ok(),
            ("p", "1") => {}
            _ => return None,
        }
    }
    let salt = base64ct::Base64Unpadded::decode_vec(parts.next()?).ok()?;
    let hash = base64ct::Base64Unpadded::decode_vec(parts.next()?).ok()?;
    if parts.next().is_some() || hash.is_empty() || hash.len() > 64 {
        return None;
    }
    Some((m?, t?, salt, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_url_safe() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(is_token_shaped(&a));
        assert!(!is_token_shaped(&a[1..]));
        assert!(!is_token_shaped(&format!("{}+", &a[1..])));
        assert_ne!(a, new_token());
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn access_tokens_are_ntfy_shaped_and_distinct() {
        let a = new_access_token();
        assert!(is_access_token_shaped(&a), "{a}");
        assert_ne!(a, new_access_token());
        assert!(!is_access_token_shaped(&a[1..]));
        assert!(!is_access_token_shaped(&a.replace("tk_", "tx_")));
    }

    #[test]
    fn password_round_trip_and_mismatch() {
        let stored = hash_password("correct horse");
        assert!(stored.starts_with("$argon2id$v=19$m=4096,t=3,p=1$"));
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("correct hors", &stored));
        assert!(!verify_password("correct horse", "$argon2id$v=19$m=4096"));
        assert!(!verify_password("x", "plain"));
    }
}

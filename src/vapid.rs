//! VAPID (RFC 8292): the check that a push to a key-bound endpoint comes from the app
//! server whose public key the subscriber gave.
//!
//! Two header forms are read: `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292) and the
//! older `Authorization: WebPush <JWT>` with `Crypto-Key: p256ecdsa=<key>`. Keys are raw
//! uncompressed P-256 points (65 bytes), base64url with or without `=` padding, as the
//! Push API's `applicationServerKey` gives them. A token passes when:
//! - its key is the bound key;
//! - its header names `ES256`, and its claims are JSON whose `aud` is the endpoint's origin
//!   (scheme, host and port; a default port may be written or left out) and whose `exp` is
//!   in the future and at most 24 hours ahead (with one minute of clock skew);
//! - its signature (JWS: `r || s`, 64 bytes) verifies over `<header>.<claims>` with the
//!   bound key.
//!
//! The checks run in two steps, cheapest first: [`precheck`] does everything but the
//! signature (base64 and a little JSON, microseconds) and yields a [`Signed`] token; only
//! [`Signed::verify`] runs the ECDSA verification, which costs as much as tens of
//! requests, so the caller decides in between who may spend it (`crate::signers`).
//!
//! A missing, malformed, expired or wrongly signed token is [`Refusal::Unauthorized`]
//! (401); a valid header form whose key is another app server's is [`Refusal::OtherKey`]
//! (403). The token and the key are never logged.

use base64ct::{Base64UrlUnpadded, Encoding};
use miniserde::Deserialize;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

/// Raw uncompressed P-256 point: 0x04, x, y.
pub const KEY_BYTES: usize = 65;
const MAX_AHEAD_SECS: u64 = 24 * 3600;
const SKEW_SECS: u64 = 60;
/// A token longer than this is refused before it is decoded.
const MAX_TOKEN_BYTES: usize = 2048;

/// Why a push to a VAPID-bound endpoint is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no token, or one that does not verify; the reason is for the log.
    Unauthorized(&'static str),
    /// 403: signed (or claimed) by a key other than the bound one.
    OtherKey,
}

/// Decodes an application server key as a subscriber gives it; `None` unless it is a
/// valid uncompressed P-256 point.
pub fn parse_key(text: &str) -> Option<[u8; KEY_BYTES]> {
    let raw = decode_base64url(text.trim())?;
    let key: [u8; KEY_BYTES] = raw.try_into().ok()?;
    VerifyingKey::from_sec1_bytes(&key).ok()?;
    Some(key)
}

/// A token that passed every check but its signature's.
pub struct Signed<'a> {
    /// `<header>.<claims>`, as signed.
    message: &'a str,
    signature: Signature,
}

/// Checks the VAPID headers of a push to an endpoint bound to `bound_key`, whose origin
/// is `origin` (`https://host[:port]`), in everything but the signature; `now_secs` is
/// Unix time.
pub fn precheck<'a>(
    authorization: Option<&'a str>,
    crypto_key: Option<&'a str>,
    bound_key: &[u8; KEY_BYTES],
    origin: &str,
    now_secs: u64,
) -> Result<Signed<'a>, Refusal> {
    let (token, key) = credentials(authorization, crypto_key)
        .ok_or(Refusal::Unauthorized("no VAPID credentials"))?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::Unauthorized("VAPID token too long"));
    }
    let key = decode_base64url(key).ok_or(Refusal::Unauthorized("VAPID key is not base64url"))?;
    if key.as_slice() != bound_key.as_slice() {
        return Err(Refusal::OtherKey);
    }
    let malformed = Refusal::Unauthorized("VAPID token is not a JWT");
    let mut parts = token.split('.');
    let (Some(header_part), Some(claims_part), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    let header: Header = json_part(header_part).ok_or(malformed)?;
    if header.alg != "ES256" {
        return Err(Refusal::Unauthorized("VAPID token is not ES256"));
    }
    let claims: Claims =
        json_part(claims_part).ok_or(Refusal::Unauthorized("VAPID claims are malformed"))?;
    if !same_origin(&claims.aud, origin) {
        return Err(Refusal::Unauthorized(
            "VAPID aud is not this endpoint's origin",
        ));
    }
    if claims.exp <= now_secs {
        return Err(Refusal::Unauthorized("VAPID token expired"));
    }
    if claims.exp > now_secs + MAX_AHEAD_SECS + SKEW_SECS {
        return Err(Refusal::Unauthorized("VAPID exp more than 24 hours ahead"));
    }
    let signature = decode_base64url(signature)
        .and_then(|raw| Signature::from_slice(&raw).ok())
        .ok_or(Refusal::Unauthorized("VAPID signature is malformed"))?;
    Ok(Signed {
        message: &token[..header_part.len() + 1 + claims_part.len()],
        signature,
    })
}

impl Signed<'_> {
    /// The expensive step: the ECDSA verification of the signature with `bound_key`.
    pub fn verify(&self, bound_key: &[u8; KEY_BYTES]) -> Result<(), Refusal> {
        VerifyingKey::from_sec1_bytes(bound_key)
            .map_err(|_| Refusal::Unauthorized("bound key is not a P-256 point"))?
            .verify(self.message.as_bytes(), &self.signature)
            .map_err(|_| Refusal::Unauthorized("VAPID signature does not verify"))
    }
}

/// The JWT and the key, from either header form.
fn credentials<'a>(
    authorization: Option<&'a str>,
    crypto_key: Option<&'a str>,
) -> Option<(&'a str, &'a str)> {
    let auth = authorization?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("vapid") {
        let mut token = None;
        let mut key = None;
        for param in rest.split(',') {
            let (name, value) = param.trim().split_once('=')?;
            match name.trim() {
                "t" => token = Some(value.trim()),
                "k" => key = Some(value.trim()),
                _ => {}
            }
        }
        return Some((token?, key?));
    }
    if scheme.eq_ignore_ascii_case("webpush") {
        let key = crypto_key?
            .split([';', ','])
            .filter_map(|param| param.trim().split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("p256ecdsa"))
            .map(|(_, value)| value.trim().trim_matches('"'))?;
        return Some((rest.trim(), key));
    }
    None
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    aud: String,
    exp: u64,
}

fn json_part<T: miniserde::Deserialize>(part: &str) -> Option<T> {
    let raw = decode_base64url(part)?;
    miniserde::json::from_str(std::str::from_utf8(&raw).ok()?).ok()
}

/// Base64url with or without `=` padding.
fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(text.trim_end_matches('=')).ok()
}

/// Origins compared as RFC 6454 does, with a default port written or not.
fn same_origin(aud: &str, origin: &str) -> bool {
    normalize_origin(aud).is_some_and(|a| Some(a) == normalize_origin(origin))
}

fn normalize_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.trim_end_matches('/').to_ascii_lowercase();
    if authority.contains('/') {
        return None;
    }
    let default = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let host = authority.strip_suffix(default).unwrap_or(&authority);
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    const ORIGIN: &str = "https://push.example.net";

    fn check(
        authorization: Option<&str>,
        crypto_key: Option<&str>,
        bound: &[u8; KEY_BYTES],
        origin: &str,
        now: u64,
    ) -> Result<(), Refusal> {
        precheck(authorization, crypto_key, bound, origin, now)?.verify(bound)
    }

    fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn public(key: &SigningKey) -> [u8; KEY_BYTES] {
        key.verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .try_into()
            .unwrap()
    }

    fn jwt(key: &SigningKey, claims: &str) -> String {
        let header = Base64UrlUnpadded::encode_string(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = Base64UrlUnpadded::encode_string(claims.as_bytes());
        let signed = format!("{header}.{claims}");
        let signature: Signature = key.sign(signed.as_bytes());
        format!(
            "{signed}.{}",
            Base64UrlUnpadded::encode_string(&signature.to_bytes())
        )
    }

    fn vapid(key: &SigningKey, claims: &str) -> String {
        let k = Base64UrlUnpadded::encode_string(&public(key));
        format!("vapid t={}, k={k}", jwt(key, claims))
    }

    #[test]
    fn valid_tokens_pass_in_both_header_forms() {
        let key = signing_key(7);
        let claims = r#"{"aud":"https://push.example.net:443","exp":1000,"sub":"mailto:a@b"}"#;
        let bound = public(&key);
        assert_eq!(
            check(Some(&vapid(&key, claims)), None, &bound, ORIGIN, 900),
            Ok(())
        );
        let webpush = format!("WebPush {}", jwt(&key, claims));
        let crypto = format!(
            "dh=abc;p256ecdsa={}=",
            Base64UrlUnpadded::encode_string(&bound)
        );
        assert_eq!(
            check(Some(&webpush), Some(&crypto), &bound, ORIGIN, 900),
            Ok(())
        );
    }

    #[test]
    fn refusals_but_a_forged_signature_need_no_verification() {
        let key = signing_key(7);
        let other = signing_key(9);
        let bound = public(&key);
        let good = r#"{"aud":"https://push.example.net","exp":1000}"#;
        let unauthorized = |auth: Option<&str>, now| {
            matches!(
                precheck(auth, None, &bound, ORIGIN, now),
                Err(Refusal::Unauthorized(_))
            )
        };
        assert!(unauthorized(None, 900));
        assert!(unauthorized(Some("Bearer x"), 900));
        assert!(unauthorized(Some(&vapid(&key, good)), 1000), "expired");
        let far = r#"{"aud":"https://push.example.net","exp":200000}"#;
        assert!(unauthorized(Some(&vapid(&key, far)), 900), "too far ahead");
        let elsewhere = r#"{"aud":"https://other.example.net","exp":1000}"#;
        assert!(unauthorized(Some(&vapid(&key, elsewhere)), 900), "aud");
        let mut malformed = vapid(&key, good);
        malformed.insert_str(malformed.find(", k=").unwrap() - 2, "AA");
        assert!(unauthorized(Some(&malformed), 900), "a 66-byte signature");
        let long = format!("vapid t={}, k=x", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(unauthorized(Some(&long), 900), "too long");
        assert!(
            matches!(
                precheck(Some(&vapid(&other, good)), None, &bound, ORIGIN, 900),
                Err(Refusal::OtherKey)
            ),
            "another key"
        );

        let k = Base64UrlUnpadded::encode_string(&bound);
        let forged = format!("vapid t={}, k={k}", jwt(&other, good));
        let signed = precheck(Some(&forged), None, &bound, ORIGIN, 900)
            .expect("only the signature is wrong");
        assert_eq!(
            signed.verify(&bound),
            Err(Refusal::Unauthorized("VAPID signature does not verify"))
        );
    }

    #[test]
    fn keys_parse_with_or_without_padding() {
        let bound = public(&signing_key(3));
        let text = Base64UrlUnpadded::encode_string(&bound);
        assert_eq!(parse_key(&text), Some(bound));
        assert_eq!(parse_key(&format!("{text}=")), Some(bound));
        assert_eq!(parse_key("AAAA"), None);
        let mut off_curve = bound;
        off_curve[64] ^= 1;
        assert_eq!(
            parse_key(&Base64UrlUnpadded::encode_string(&off_curve)),
            None
        );
    }

    #[test]
    fn origins() {
        assert!(same_origin("https://a.b:443/", "https://A.b"));
        assert!(same_origin("http://a.b", "http://a.b:80"));
        assert!(!same_origin("https://a.b:8443", "https://a.b"));
        assert!(!same_origin("https://a.b/x", "https://a.b"));
        assert!(!same_origin("a.b", "a.b"));
    }
}

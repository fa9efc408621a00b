//! Web Push message encryption (RFC 8291, `Content-Encoding: aes128gcm`) done by a real,
//! third-party library, Mozilla's `ece` crate (the one the `web-push` crate encrypts with), so
//! that tests post what an app server such as Mastodon posts and read it back as a user agent.
//!
//! A `Subscriber` is the user agent's side: its P-256 key pair and 16-byte auth secret, made by
//! the library's own key generation. `encrypt` is the app server's side: a fresh ephemeral key
//! and salt per message, giving the body an app server POSTs (86-byte header, then records).
//!
//! `ece::encrypt` pads the plaintext (with its delimiter byte) up to a multiple of 128 bytes, in
//! records of at most 4096 bytes: see `body_len`. Such a body is longer than one with the
//! minimum padding, and from 3968 bytes of plaintext it no longer fits in 4096 bytes: the
//! UnifiedPush maximum of 3993 bytes (4096 - 86 - 1 - 16) needs a sender that pads by one byte,
//! which ece's public API cannot do (Mastodon's Ruby gem pads by two, in one record).

use openpush_wire::base64;

/// The aes128gcm header for Web Push: salt (16), rs (4), idlen (1), keyid (the sender's
/// uncompressed P-256 public key, 65).
pub const HEADER_LEN: usize = 86;
/// The AES-GCM tag at the end of each record.
pub const TAG_LEN: usize = 16;
/// The record size `ece::encrypt` writes in the header: ciphertext and tag of one record.
pub const RECORD_SIZE: usize = 4096;
/// `ece::encrypt` pads plaintext + delimiter to a multiple of this.
pub const PAD_BLOCK: usize = 128;

/// A Web Push subscription's keys, as a user agent holds them.
pub struct Subscriber {
    keys: ece::EcKeyComponents,
    auth: [u8; 16],
}

impl Subscriber {
    /// A new key pair and auth secret from `ece::generate_keypair_and_auth_secret`.
    pub fn new() -> Subscriber {
        let (pair, auth) = ece::generate_keypair_and_auth_secret().expect("ece key generation");
        Subscriber {
            keys: pair.raw_components().expect("ece key export"),
            auth,
        }
    }

    /// The uncompressed public key point (65 bytes, starting with 0x04).
    pub fn public_key(&self) -> &[u8] {
        self.keys.public_key()
    }

    pub fn auth(&self) -> &[u8; 16] {
        &self.auth
    }

    /// The subscription's `p256dh`: base64url without padding of the 65-byte point.
    pub fn public_key_b64(&self) -> String {
        base64::encode_url(self.public_key())
    }

    /// The subscription's `auth`: base64url without padding of the 16-byte secret.
    pub fn auth_b64(&self) -> String {
        base64::encode_url(&self.auth)
    }

    /// What an app server POSTs for `plaintext` (not empty): `ece::encrypt` with this
    /// subscriber's public key and auth secret; `body_len(plaintext.len())` bytes.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        ece::encrypt(self.public_key(), &self.auth, plaintext).expect("ece encrypt")
    }

    /// The plaintext of an aes128gcm body, by `ece::decrypt`; panics if it does not decrypt.
    pub fn decrypt(&self, body: &[u8]) -> Vec<u8> {
        self.try_decrypt(body).expect("ece decrypt")
    }

    /// `ece::decrypt`'s answer, for tests that expect a body to be rejected.
    pub fn try_decrypt(&self, body: &[u8]) -> Result<Vec<u8>, ece::Error> {
        ece::decrypt(&self.keys, &self.auth, body)
    }
}

impl Default for Subscriber {
    fn default() -> Self {
        Subscriber::new()
    }
}

/// The length of `Subscriber::encrypt`'s body for `plaintext_len` bytes (at least 1), as
/// ece 2.4 makes it: header, then plaintext + padding (delimiter and zeros) up to a multiple of
/// `PAD_BLOCK` (at least one padding byte a record), spread over records of at most
/// `RECORD_SIZE - TAG_LEN` bytes, each with its tag.
pub fn body_len(plaintext_len: usize) -> usize {
    let per_record = RECORD_SIZE - TAG_LEN;
    let padding =
        (PAD_BLOCK - plaintext_len % PAD_BLOCK).max(plaintext_len.div_ceil(per_record - 1));
    let padded = plaintext_len + padding;
    HEADER_LEN + padded + padded.div_ceil(per_record) * TAG_LEN
}

/// The record size an aes128gcm body declares in its header (bytes 16..20, big-endian).
pub fn record_size(body: &[u8]) -> u32 {
    u32::from_be_bytes(body[16..20].try_into().unwrap())
}

/// The sender's public key an aes128gcm body carries as its keyid (65 bytes for Web Push).
pub fn sender_key(body: &[u8]) -> &[u8] {
    let idlen = body[20] as usize;
    &body[21..21 + idlen]
}

/// Standard base64 with padding, e.g. a binary message body carried in JSON.
pub fn b64_encode(data: &[u8]) -> String {
    base64::encode(data)
}

/// Decodes standard base64 with padding; panics on anything else. The wire's decoder takes
/// either alphabet, padded or not; the round trip keeps what the server sends to this form.
pub fn b64_decode(text: &str) -> Vec<u8> {
    base64::decode(text)
        .filter(|bytes| base64::encode(bytes) == text)
        .unwrap_or_else(|| panic!("bad base64 {text:?}: not standard base64 with padding"))
}

/// Base64url without padding, as Web Push keys and UnifiedPush endpoints use.
pub fn b64url_encode(data: &[u8]) -> String {
    base64::encode_url(data)
}

/// Decodes base64url without padding; panics on anything else, as [`b64_decode`] does.
pub fn b64url_decode(text: &str) -> Vec<u8> {
    base64::decode(text)
        .filter(|bytes| base64::encode_url(bytes) == text)
        .unwrap_or_else(|| panic!("bad base64url {text:?}: not base64url without padding"))
}

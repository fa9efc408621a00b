//! Web Push message encryption (RFC 8291) in the `aes128gcm` content coding (RFC 8188).
//!
//! A message is one header and records: `salt (16) || rs (4, big-endian) || idlen (1) ||
//! keyid (the sender's public key, 65)`, then records of at most `rs` bytes, each AES-128-GCM
//! over the plaintext, a delimiter (`0x01`, or `0x02` for the last record) and zero padding.
//! The keys come from an ECDH between the sender's one-time key and the subscriber's key,
//! mixed with the subscriber's auth secret:
//!
//! ```text
//! IKM   = HKDF(salt = auth, ikm = ECDH, info = "WebPush: info\0" || ua_public || as_public, 32)
//! CEK   = HKDF(salt = salt, ikm = IKM, info = "Content-Encoding: aes128gcm\0", 16)
//! NONCE = HKDF(salt = salt, ikm = IKM, info = "Content-Encoding: nonce\0", 12) XOR record number
//! ```
//!
//! [`encrypt`] writes one record (Web Push bodies are at most 4096 bytes); [`decrypt`] reads
//! any number. Nothing here logs, and no key leaves it except through its return values.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::ecdh::diffie_hellman;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

use crate::keys::{self, PUBLIC_KEY_BYTES};

/// The header of a Web Push message: salt, record size, key id length, the sender's key.
pub const HEADER_BYTES: usize = 16 + 4 + 1 + PUBLIC_KEY_BYTES;
pub const TAG_BYTES: usize = 16;
/// The record size written: a Web Push body is one record of at most 4096 bytes.
pub const RECORD_BYTES: u32 = 4096;
/// The most plaintext one record of [`RECORD_BYTES`] carries (UnifiedPush's 4096-byte body
/// limit leaves 3993 with the header).
pub const MAX_PLAINTEXT_BYTES: usize = RECORD_BYTES as usize - HEADER_BYTES - TAG_BYTES - 1;

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than a header, or a record size or key id that is not Web Push's.
    Header,
    /// The sender's key in the header is not a P-256 point.
    SenderKey,
    /// A record does not decrypt: encrypted for other keys, or altered.
    Decrypt,
    /// A record's padding has no delimiter, or the wrong one.
    Padding,
    /// The plaintext does not fit one record.
    TooLong,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Header => "not an aes128gcm Web Push message (bad header)",
            Error::SenderKey => "the sender's key in the message is not a P-256 point",
            Error::Decrypt => "does not decrypt with this subscription's keys",
            Error::Padding => "a record's padding is malformed",
            Error::TooLong => "the message is too long for one Web Push record",
        })
    }
}

impl std::error::Error for Error {}

/// What a sender needs to encrypt for a subscriber.
pub struct Receiver<'a> {
    pub public: &'a PublicKey,
    pub auth: &'a [u8],
}

/// Encrypts `plaintext` for `to` with a fresh sender key and salt.
pub fn encrypt(to: &Receiver<'_>, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    encrypt_with(to, plaintext, &keys::generate(), &keys::random::<16>())
}

/// Encrypts with a given sender key and salt (the RFC's test vector fixes them).
pub fn encrypt_with(
    to: &Receiver<'_>,
    plaintext: &[u8],
    sender: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, Error> {
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(Error::TooLong);
    }
    let ua_public = to.public.to_sec1_bytes();
    let as_public = keys::public_bytes(sender);
    let shared = diffie_hellman(sender.to_nonzero_scalar(), to.public.as_affine());
    let (cek, nonce) = derive(
        shared.raw_secret_bytes(),
        to.auth,
        &ua_public,
        &as_public,
        salt,
    );
    let mut record = plaintext.to_vec();
    record.push(2);
    let sealed = Aes128Gcm::new(&cek.into())
        .encrypt(&Nonce::from(nonce), record.as_slice())
        .map_err(|_| Error::TooLong)?;
    let mut out = Vec::with_capacity(HEADER_BYTES + sealed.len());
    out.extend_from_slice(salt);
    out.extend_from_slice(&RECORD_BYTES.to_be_bytes());
    out.push(PUBLIC_KEY_BYTES as u8);
    out.extend_from_slice(&as_public);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts a message for the subscriber whose private key is `key` and auth secret `auth`.
pub fn decrypt(key: &SecretKey, auth: &[u8], body: &[u8]) -> Result<Vec<u8>, Error> {
    if body.len() < HEADER_BYTES {
        return Err(Error::Header);
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
    let idlen = usize::from(body[20]);
    if idlen != PUBLIC_KEY_BYTES || rs <= TAG_BYTES + 1 {
        return Err(Error::Header);
    }
    let as_public = &body[21..HEADER_BYTES];
    let sender = PublicKey::from_sec1_bytes(as_public).map_err(|_| Error::SenderKey)?;
    let ua_public = keys::public_bytes(key);
    let shared = diffie_hellman(key.to_nonzero_scalar(), sender.as_affine());
    let (cek, nonce) = derive(shared.raw_secret_bytes(), auth, &ua_public, as_public, salt);
    let cipher = Aes128Gcm::new(&cek.into());
    let records: Vec<&[u8]> = body[HEADER_BYTES..].chunks(rs).collect();
    if records.is_empty() {
        return Err(Error::Decrypt);
    }
    let mut out = Vec::new();
    for (seq, record) in records.iter().enumerate() {
        let mut n = nonce;
        for (b, s) in n[4..].iter_mut().zip((seq as u64).to_be_bytes()) {
            *b ^= s;
        }
        let plain = cipher
            .decrypt(&Nonce::from(n), *record)
            .map_err(|_| Error::Decrypt)?;
        let end = plain.iter().rposition(|&b| b != 0).ok_or(Error::Padding)?;
        let last = seq + 1 == records.len();
        if plain[end] != if last { 2 } else { 1 } {
            return Err(Error::Padding);
        }
        out.extend_from_slice(&plain[..end]);
    }
    Ok(out)
}

fn derive(
    ecdh: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> ([u8; 16], [u8; 12]) {
    let mut key_info = Vec::with_capacity(14 + 2 * PUBLIC_KEY_BYTES);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh)
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF-SHA256 output length");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF-SHA256 output length");
    (cek, nonce)
}

use crate::support;
use support::webpush::*;

/// The UnifiedPush maximum cleartext: what fits a 4096-byte body with the minimum padding
/// (86-byte header, 1 delimiter byte, 16-byte tag).
const UNIFIEDPUSH_MAX_CLEARTEXT: usize = 4096 - HEADER_LEN - 1 - TAG_LEN;

fn message(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + len) as u8).collect()
}

#[test]
fn round_trip_of_1_100_and_3993_bytes() {
    assert_eq!(UNIFIEDPUSH_MAX_CLEARTEXT, 3993);
    let ua = Subscriber::new();
    for len in [1, 100, UNIFIEDPUSH_MAX_CLEARTEXT] {
        let plaintext = message(len);
        let body = ua.encrypt(&plaintext);
        assert_eq!(body.len(), body_len(len), "{len} bytes");
        assert_eq!(record_size(&body), RECORD_SIZE as u32);
        let sender = sender_key(&body);
        assert_eq!(sender.len(), 65);
        assert_eq!(sender[0], 4, "an uncompressed P-256 point");
        assert_ne!(sender, ua.public_key());
        if len >= 16 {
            let ciphertext = &body[HEADER_LEN..];
            assert!(
                !ciphertext.windows(16).any(|w| w == &plaintext[..16]),
                "{len}: in clear"
            );
        }
        assert_eq!(ua.decrypt(&body), plaintext, "{len} bytes");
    }
}

/// ece pads to a multiple of 128 bytes, where an app server with minimum padding sends
/// plaintext + 86 + 17: pin what ece sends, so a change in the library shows here.
#[test]
fn ece_body_lengths() {
    let ua = Subscriber::new();
    let cases = [
        (1, 86 + 128 + 16),
        (100, 86 + 128 + 16),
        (127, 86 + 128 + 16),
        (128, 86 + 256 + 16),
        // The largest ece message in one 4096-byte record and in a 4096-byte body.
        (3967, 4070),
        // From here ece needs two records (4096 + 32 bytes after the header).
        (3968, 86 + 4096 + 2 * 16),
        (UNIFIEDPUSH_MAX_CLEARTEXT, 4214),
        (5000, 86 + 5120 + 2 * 16),
    ];
    for (len, expected) in cases {
        assert_eq!(body_len(len), expected, "body_len({len})");
        let plaintext = message(len);
        let body = ua.encrypt(&plaintext);
        assert_eq!(body.len(), expected, "{len} bytes");
        assert_eq!(ua.decrypt(&body), plaintext, "{len} bytes");
    }
    assert!(body_len(3967) <= 4096);
    assert!(body_len(3968) > 4096);
    assert!(body_len(UNIFIEDPUSH_MAX_CLEARTEXT) > 4096);
}

#[test]
fn each_message_has_its_own_key_and_salt() {
    let ua = Subscriber::new();
    let a = ua.encrypt(b"same");
    let b = ua.encrypt(b"same");
    assert_ne!(a[..16], b[..16], "salt");
    assert_ne!(sender_key(&a), sender_key(&b));
    assert_ne!(a, b);
    assert_eq!(ua.decrypt(&a), b"same");
    assert_eq!(ua.decrypt(&b), b"same");
}

#[test]
fn only_the_subscriber_decrypts_an_intact_body() {
    let ua = Subscriber::new();
    let other = Subscriber::new();
    let body = ua.encrypt(b"for ua only");
    assert!(other.try_decrypt(&body).is_err());
    let mut tampered = body.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(ua.try_decrypt(&tampered).is_err());
    assert!(ua.try_decrypt(&body[..body.len() - 1]).is_err());
    assert_eq!(ua.decrypt(&body), b"for ua only");
}

#[test]
fn subscription_keys_in_base64url() {
    let ua = Subscriber::new();
    let p256dh = ua.public_key_b64();
    let auth = ua.auth_b64();
    assert_eq!(p256dh.len(), 87);
    assert_eq!(auth.len(), 22);
    for text in [&p256dh, &auth] {
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{text}"
        );
    }
    let point = b64url_decode(&p256dh);
    assert_eq!(point.len(), 65);
    assert_eq!(point[0], 4);
    assert_eq!(point, ua.public_key());
    assert_eq!(b64url_decode(&auth), ua.auth());
    assert_ne!(Subscriber::new().auth(), ua.auth());
}

#[test]
fn base64_helpers() {
    assert_eq!(b64_encode(b"\xfb\xff"), "+/8=");
    assert_eq!(b64_decode("+/8="), b"\xfb\xff");
    assert_eq!(b64url_encode(b"\xfb\xff"), "-_8");
    assert_eq!(b64url_decode("-_8"), b"\xfb\xff");
    let body = Subscriber::new().encrypt(b"x");
    assert_eq!(b64_decode(&b64_encode(&body)), body);
}

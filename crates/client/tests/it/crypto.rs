//! The crypto against outside references: the RFC 8291 appendix test vector, Mozilla's `ece`
//! crate in both directions, and VAPID tokens checked by a verifier that shares no code with
//! the signer (p256's `VerifyingKey` on the JWT's parts, as the server's src/vapid.rs does).

use openpush_client::{ece, keys, vapid};
use openpush_wire::base64;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

fn b64(text: &str) -> Vec<u8> {
    base64::decode(text).expect("test vector is base64url")
}

// RFC 8291, Appendix A.
const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const AS_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const UA_PUBLIC: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
const MESSAGE: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDl\
    l6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

#[test]
fn rfc8291_appendix_message_is_reproduced_and_decrypted() {
    let sender = keys::parse_private(AS_PRIVATE).unwrap();
    assert_eq!(keys::public_b64(&sender), AS_PUBLIC);
    let ua_public = keys::parse_public(UA_PUBLIC).unwrap();
    let auth = b64(AUTH);
    let salt: [u8; 16] = b64(SALT).try_into().unwrap();
    let to = ece::Receiver {
        public: &ua_public,
        auth: &auth,
    };
    let body = ece::encrypt_with(&to, PLAINTEXT.as_bytes(), &sender, &salt).unwrap();
    assert_eq!(base64::encode_url(&body), MESSAGE);

    let ua_private = keys::parse_private(UA_PRIVATE).unwrap();
    assert_eq!(keys::public_b64(&ua_private), UA_PUBLIC);
    let plain = ece::decrypt(&ua_private, &auth, &b64(MESSAGE)).unwrap();
    assert_eq!(plain, PLAINTEXT.as_bytes());
}

#[test]
fn altered_or_misaddressed_messages_do_not_decrypt() {
    let ua = keys::generate();
    let other = keys::generate();
    let auth = keys::random::<16>();
    let public = ua.public_key();
    let body = ece::encrypt(
        &ece::Receiver {
            public: &public,
            auth: &auth,
        },
        b"hi",
    )
    .unwrap();
    assert_eq!(ece::decrypt(&ua, &auth, &body).unwrap(), b"hi");
    assert_eq!(ece::decrypt(&other, &auth, &body), Err(ece::Error::Decrypt));
    assert_eq!(ece::decrypt(&ua, &[0; 16], &body), Err(ece::Error::Decrypt));
    let mut flipped = body.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(ece::decrypt(&ua, &auth, &flipped), Err(ece::Error::Decrypt));
    assert_eq!(
        ece::decrypt(&ua, &auth, &body[..50]),
        Err(ece::Error::Header)
    );
    // The largest plaintext fills exactly one 4096-byte record; one more byte is refused.
    let max = vec![7u8; ece::MAX_PLAINTEXT_BYTES];
    let to = ece::Receiver {
        public: &public,
        auth: &auth,
    };
    assert_eq!(ece::encrypt(&to, &max).unwrap().len(), 4096);
    assert_eq!(
        ece::encrypt(&to, &[0; ece::MAX_PLAINTEXT_BYTES + 1]),
        Err(ece::Error::TooLong)
    );
}

#[test]
fn mozilla_ece_decrypts_ours_and_we_decrypt_its() {
    // Ours → ece, for several sizes up to the one-record maximum.
    let (pair, auth) = ::ece::generate_keypair_and_auth_secret().unwrap();
    let components = pair.raw_components().unwrap();
    let public = keys::parse_public(&base64::encode_url(components.public_key())).unwrap();
    for len in [1, 2, 127, 128, 1000, ece::MAX_PLAINTEXT_BYTES] {
        let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let body = ece::encrypt(
            &ece::Receiver {
                public: &public,
                auth: &auth,
            },
            &plain,
        )
        .unwrap();
        assert_eq!(
            ::ece::decrypt(&components, &auth, &body).unwrap(),
            plain,
            "{len} bytes"
        );
    }

    // ece → ours: it pads to 128-byte blocks and splits long messages into several records.
    let ua = keys::generate();
    let auth = keys::random::<16>();
    for len in [1, 5, 300, 3000, 5000] {
        let plain: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
        let body = ::ece::encrypt(&keys::public_bytes(&ua), &auth, &plain).unwrap();
        assert_eq!(
            ece::decrypt(&ua, &auth, &body).unwrap(),
            plain,
            "{len} bytes"
        );
    }
}

/// The verifier: splits the JWT, checks ES256 over `header.claims` with the `k=` key.
fn verify(header: &str) -> (String, String) {
    let rest = header.strip_prefix("vapid t=").expect("vapid scheme");
    let (token, key) = rest.split_once(",k=").expect("t= and k=");
    let key = VerifyingKey::from_sec1_bytes(&b64(key)).expect("k= is a P-256 point");
    let (signed, signature) = token.rsplit_once('.').expect("three JWT parts");
    let signature = Signature::from_slice(&b64(signature)).expect("64-byte r || s");
    key.verify(signed.as_bytes(), &signature)
        .expect("the signature verifies");
    let (head, claims) = signed.split_once('.').unwrap();
    (
        String::from_utf8(b64(head)).unwrap(),
        String::from_utf8(b64(claims)).unwrap(),
    )
}

#[test]
fn vapid_tokens_verify_independently() {
    let key = keys::generate();
    let header = vapid::header(
        &key,
        "https://push.example.org",
        "mailto:ops@example.org",
        1_000,
    );
    let (head, claims) = verify(&header);
    assert_eq!(head, r#"{"typ":"JWT","alg":"ES256"}"#);
    assert_eq!(
        claims,
        format!(
            r#"{{"aud":"https://push.example.org","exp":{},"sub":"mailto:ops@example.org"}}"#,
            1_000 + vapid::TOKEN_LIFETIME_SECS
        )
    );
    assert!(header.ends_with(&keys::public_b64(&key)));
    // Another key's signature does not verify under this key.
    let other = vapid::header(&keys::generate(), "https://p", "mailto:x", 0);
    let forged = format!(
        "{},k={}",
        other.split(",k=").next().unwrap(),
        keys::public_b64(&key)
    );
    assert!(std::panic::catch_unwind(|| verify(&forged)).is_err());
}

#[test]
fn vapid_keys_round_trip_as_pkcs8_pem() {
    let key = keys::generate();
    let pem = vapid::to_pem(&key);
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    assert_eq!(vapid::from_text(&pem).unwrap().to_bytes(), key.to_bytes());
    let sec1 = key.to_sec1_pem(p256::pkcs8::LineEnding::LF).unwrap();
    assert_eq!(vapid::from_text(&sec1).unwrap().to_bytes(), key.to_bytes());
    assert_eq!(
        vapid::from_text(&keys::private_b64(&key))
            .unwrap()
            .to_bytes(),
        key.to_bytes()
    );
    assert!(
        vapid::from_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_none()
    );
}

//! What the VAPID tests (`autopush`, `vapid`) share: an application server with its ES256 key pair
//! that signs tokens as RFC 8292 says, and a user agent with one `/wpush/v2/` endpoint bound to
//! such a key.

use base64ct::{Base64UrlUnpadded, Encoding};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

use super::Server;
use super::ws::{PING, PONG, TEXT, WsClient};
use super::{TIMEOUT, json_field, now_secs};

/// An application server with its VAPID key pair.
pub struct AppServer {
    key: SigningKey,
}

impl AppServer {
    pub fn new(seed: u8) -> AppServer {
        AppServer {
            key: SigningKey::from_slice(&[seed; 32]).unwrap(),
        }
    }

    /// The public key as `applicationServerKey`: base64url of the uncompressed point.
    pub fn public(&self) -> String {
        let point = self.key.verifying_key().to_sec1_point(false);
        Base64UrlUnpadded::encode_string(point.as_bytes())
    }

    /// An ES256 JWT; the signature is JWS's `r || s`.
    pub fn jwt(&self, aud: &str, exp: u64) -> String {
        let header = Base64UrlUnpadded::encode_string(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = format!(r#"{{"aud":"{aud}","exp":{exp},"sub":"mailto:ops@example.org"}}"#);
        let signed = format!(
            "{header}.{}",
            Base64UrlUnpadded::encode_string(claims.as_bytes())
        );
        let signature: Signature = self.key.sign(signed.as_bytes());
        let signature = signature.to_bytes();
        assert_eq!(signature.len(), 64);
        format!("{signed}.{}", Base64UrlUnpadded::encode_string(&signature))
    }

    /// `Authorization: vapid t=…, k=…` (RFC 8292) for `aud`, valid for an hour.
    pub fn vapid(&self, aud: &str) -> String {
        self.vapid_until(aud, now_secs() + 3600)
    }

    pub fn vapid_until(&self, aud: &str, exp: u64) -> String {
        format!("vapid t={}, k={}", self.jwt(aud, exp), self.public())
    }
}

/// A new user agent (from the host itself) with one channel bound to `app`'s key: the
/// open WebSocket and the path of the channel's `/wpush/v2/` endpoint.
pub fn v2_endpoint(s: &Server, app: &AppServer) -> (WsClient, String) {
    let mut ws = WsClient::connect(s.addr, "/", &[]).expect("a 101 upgrade");
    ws.send_text(r#"{"messageType":"hello","use_webpush":true}"#)
        .unwrap();
    text(&mut ws);
    ws.send_text(&format!(
        r#"{{"messageType":"register","channelID":"0c1d2e3f-4a5b-4c6d-8e7f-000000000001","key":"{}"}}"#,
        app.public()
    ))
    .unwrap();
    let answer = text(&mut ws);
    let url = json_field(&answer, "pushEndpoint").unwrap_or_else(|| panic!("{answer}"));
    let path = url
        .strip_prefix(&format!("http://{}", s.addr))
        .unwrap_or_else(|| panic!("endpoint {url} not on this server"));
    assert!(path.starts_with("/wpush/v2/"), "{url}");
    (ws, path.to_owned())
}

/// The next text message, answering pings.
fn text(ws: &mut WsClient) -> String {
    loop {
        let frame = ws.next_frame_within(TIMEOUT).expect("a message in time");
        match frame.opcode {
            TEXT => return String::from_utf8(frame.payload).expect("UTF-8 text"),
            PING => ws.send_frame(0x80 | PONG, &frame.payload).unwrap(),
            other => panic!("unexpected frame {other}"),
        }
    }
}

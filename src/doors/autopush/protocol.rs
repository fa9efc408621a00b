//! The autopush WebSocket messages, without I/O: JSON text frames tagged by `messageType`,
//! as autopush-rs defines them (`autoconnect-common/src/protocol.rs`).
//!
//! Client → server: `hello` (`uaid`, `channelIDs`, `use_webpush`, `broadcasts`),
//! `register` (`channelID`, `key`), `unregister` (`channelID`, `code`), `ack`
//! (`updates: [{channelID, version, code}]`), `nack`, `broadcast_subscribe`, and `{}` as a
//! ping. Members that are not read are allowed, as are `null` optional members; an optional
//! member that is read must otherwise be a string (a `register` `key` of `5` or `{}` is a
//! malformed message, as autopush-rs, whose `key` is an `Option<String>`, cannot parse it
//! either; never a register without a key). Channel ids are UUIDs, any case, with or
//! without hyphens (Firefox sends them lowercase and hyphenated); they are echoed as sent.
//!
//! Server → client: `hello`, `register`, `unregister`, `notification` and `{}`, written
//! here. A notification's `version` is the message id in decimal, which an `ack` gives back.

use base64ct::{Base64UrlUnpadded, Encoding};
use miniserde::json::{self, Object, Value};

use crate::json::push_string;
use crate::store::MessageRecord;

#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    Hello {
        uaid: Option<String>,
    },
    Register {
        channel_id: String,
        key: Option<String>,
    },
    Unregister {
        channel_id: String,
    },
    /// (channel id, message id) of each update; versions that are not ours are left out.
    Ack(Vec<(String, u64)>),
    Nack,
    BroadcastSubscribe,
    Ping,
}

/// Reads one client message; the error says what is wrong, for the close frame.
pub fn parse(text: &[u8]) -> Result<ClientMessage, &'static str> {
    let text = std::str::from_utf8(text).map_err(|_| "a message is not UTF-8")?;
    let Ok(Value::Object(object)) = json::from_str::<Value>(text) else {
        return Err("a message is not a JSON object");
    };
    if object.is_empty() {
        return Ok(ClientMessage::Ping);
    }
    let kind = string(&object, "messageType").ok_or("a message has no messageType")?;
    Ok(match kind.to_ascii_lowercase().as_str() {
        "hello" => ClientMessage::Hello {
            uaid: optional_string(&object, "uaid", "a hello's uaid is not a string")?
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
        },
        "register" => ClientMessage::Register {
            channel_id: channel_id(&object)?,
            key: optional_string(&object, "key", "a register key is not a string")?
                .map(str::to_owned),
        },
        "unregister" => ClientMessage::Unregister {
            channel_id: channel_id(&object)?,
        },
        "ack" => {
            let Some(Value::Array(updates)) = object.get("updates") else {
                return Err("an ack has no updates");
            };
            let mut acked = Vec::with_capacity(updates.len());
            for update in updates.iter() {
                let Value::Object(update) = update else {
                    return Err("an ack update is not an object");
                };
                let channel = channel_id(update)?;
                if let Some(id) = string(update, "version").and_then(|v| v.parse().ok()) {
                    acked.push((channel, id));
                }
            }
            ClientMessage::Ack(acked)
        }
        "nack" => ClientMessage::Nack,
        "broadcast_subscribe" => ClientMessage::BroadcastSubscribe,
        "ping" => ClientMessage::Ping,
        _ => return Err("unknown messageType"),
    })
}

fn string<'a>(object: &'a Object, name: &str) -> Option<&'a str> {
    match object.get(name) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// A member that may be missing or `null`; anything else but a string is `malformed`.
fn optional_string<'a>(
    object: &'a Object,
    name: &str,
    malformed: &'static str,
) -> Result<Option<&'a str>, &'static str> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed),
    }
}

fn channel_id(object: &Object) -> Result<String, &'static str> {
    let id = string(object, "channelID").ok_or("a message has no channelID")?;
    if is_uuid(id) {
        Ok(id.to_owned())
    } else {
        Err("a channelID is not a UUID")
    }
}

/// 32 hex digits, alone or hyphenated 8-4-4-4-12.
fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    match bytes.len() {
        32 => bytes.iter().all(u8::is_ascii_hexdigit),
        36 => bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        }),
        _ => false,
    }
}

pub fn hello(uaid: &str) -> String {
    let mut out = String::from(r#"{"messageType":"hello","uaid":"#);
    push_string(&mut out, uaid);
    out.push_str(r#","status":200,"use_webpush":true,"broadcasts":{}}"#);
    out
}

pub fn register(channel_id: &str, status: u16, endpoint: Option<&str>) -> String {
    let mut out = String::from(r#"{"messageType":"register","channelID":"#);
    push_string(&mut out, channel_id);
    out.push_str(&format!(r#","status":{status}"#));
    if let Some(endpoint) = endpoint {
        out.push_str(r#","pushEndpoint":"#);
        push_string(&mut out, endpoint);
    }
    out.push('}');
    out
}

pub fn unregister(channel_id: &str, status: u16) -> String {
    let mut out = String::from(r#"{"messageType":"unregister","channelID":"#);
    push_string(&mut out, channel_id);
    out.push_str(&format!(r#","status":{status}}}"#));
    out
}

/// A message as a `notification`: its channel is its registration id; `data` (base64url)
/// when it has a body, `headers` when the app server sent an encoding (kept in the
/// record's extras; the Matrix gateway's plain JSON has none). `ttl` is the seconds it has left.
pub fn notification(id: u64, record: &MessageRecord, now: u64) -> String {
    let mut out = String::with_capacity(record.data.len() * 4 / 3 + record.extras.len() + 160);
    out.push_str(r#"{"messageType":"notification","channelID":"#);
    push_string(&mut out, &record.registration_id);
    out.push_str(&format!(
        r#","version":"{id}","ttl":{}"#,
        record.expires_at.saturating_sub(now) / 1000
    ));
    if !record.data.is_empty() {
        out.push_str(r#","data":""#);
        out.push_str(&Base64UrlUnpadded::encode_string(&record.data));
        out.push('"');
    }
    if !record.extras.is_empty() {
        out.push_str(r#","headers":{"#);
        out.push_str(std::str::from_utf8(&record.extras).unwrap_or_default());
        out.push('}');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Content;

    const CHANNEL: &str = "9d0e5f0c-6b2a-4c6e-9a55-0f7b3c1d2e4f";

    #[test]
    fn client_messages() {
        assert_eq!(parse(b"{}"), Ok(ClientMessage::Ping));
        assert_eq!(
            parse(br#"{"messageType":"hello","uaid":"","channelIDs":[],"use_webpush":true,"broadcasts":{"remote-settings/monitor_changes":"v1"}}"#),
            Ok(ClientMessage::Hello { uaid: None })
        );
        assert_eq!(
            parse(br#"{"messageType":"hello","uaid":"abc"}"#),
            Ok(ClientMessage::Hello {
                uaid: Some("abc".into())
            })
        );
        let register =
            format!(r#"{{"messageType":"register","channelID":"{CHANNEL}","key":"BA=="}}"#);
        assert_eq!(
            parse(register.as_bytes()),
            Ok(ClientMessage::Register {
                channel_id: CHANNEL.into(),
                key: Some("BA==".into())
            })
        );
        let ack = format!(
            r#"{{"messageType":"ack","updates":[{{"channelID":"{CHANNEL}","version":"17","code":100}},{{"channelID":"{CHANNEL}","version":"other"}}]}}"#
        );
        assert_eq!(
            parse(ack.as_bytes()),
            Ok(ClientMessage::Ack(vec![(CHANNEL.into(), 17)]))
        );
        let unregister =
            format!(r#"{{"messageType":"unregister","channelID":"{CHANNEL}","code":200}}"#);
        assert_eq!(
            parse(unregister.as_bytes()),
            Ok(ClientMessage::Unregister {
                channel_id: CHANNEL.into()
            })
        );
        assert_eq!(
            parse(br#"{"messageType":"nack","version":"3","code":301}"#),
            Ok(ClientMessage::Nack)
        );
        assert_eq!(
            parse(br#"{"messageType":"broadcast_subscribe","broadcasts":{}}"#),
            Ok(ClientMessage::BroadcastSubscribe)
        );
    }

    #[test]
    fn bad_messages_say_why() {
        assert_eq!(parse(b"[1]"), Err("a message is not a JSON object"));
        assert_eq!(parse(b"\xff"), Err("a message is not UTF-8"));
        assert_eq!(parse(br#"{"a":1}"#), Err("a message has no messageType"));
        assert_eq!(
            parse(br#"{"messageType":"urgency"}"#),
            Err("unknown messageType")
        );
        assert_eq!(
            parse(br#"{"messageType":"register","channelID":"x"}"#),
            Err("a channelID is not a UUID")
        );
        assert_eq!(
            parse(br#"{"messageType":"ack"}"#),
            Err("an ack has no updates")
        );
        for key in ["5", "{}", "[1]", "true"] {
            let register =
                format!(r#"{{"messageType":"register","channelID":"{CHANNEL}","key":{key}}}"#);
            assert_eq!(
                parse(register.as_bytes()),
                Err("a register key is not a string")
            );
        }
        assert_eq!(
            parse(br#"{"messageType":"hello","uaid":7}"#),
            Err("a hello's uaid is not a string")
        );
        let register =
            format!(r#"{{"messageType":"register","channelID":"{CHANNEL}","key":null}}"#);
        assert_eq!(
            parse(register.as_bytes()),
            Ok(ClientMessage::Register {
                channel_id: CHANNEL.into(),
                key: None
            })
        );
    }

    #[test]
    fn notifications() {
        let record = MessageRecord {
            expires_at: 61_000,
            posted_at: 1_000,
            content: Content::Opaque,
            priority: None,
            registration_id: CHANNEL.into(),
            collapse_key: None,
            extras: br#""encoding":"aes128gcm""#.to_vec(),
            sequence: None,
            data: vec![0xfb, 0xff],
        };
        assert_eq!(
            notification(9, &record, 1_000),
            format!(
                r#"{{"messageType":"notification","channelID":"{CHANNEL}","version":"9","ttl":60,"data":"-_8","headers":{{"encoding":"aes128gcm"}}}}"#
            )
        );
        let empty = MessageRecord {
            data: Vec::new(),
            extras: Vec::new(),
            sequence: None,
            ..record
        };
        assert_eq!(
            notification(9, &empty, 61_000),
            format!(
                r#"{{"messageType":"notification","channelID":"{CHANNEL}","version":"9","ttl":0}}"#
            )
        );
    }
}

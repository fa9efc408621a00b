//! `send`: a Web Push message encrypted for a subscription and posted to its endpoint (any
//! push service that speaks RFC 8030 over http://), or an OpenPush v0.1 message posted to
//! `/message`; and `vapid-keygen`, the app server's signing key.

use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use openpush_wire::json::{self, Subscription};
use openpush_wire::{base64, url};

use crate::cli::{Send, VapidKeygen};
use crate::{Failure, ece, keys, net, state, vapid};

const URGENCIES: [&str; 4] = ["very-low", "low", "normal", "high"];

pub fn run(args: &Send) -> Result<(), Failure> {
    match (&args.subscription, &args.server, &args.token) {
        (Some(sub), None, None) => web_push(args, sub),
        (None, Some(server), Some(token)) => openpush(args, server, token),
        _ => Err(Failure::usage(
            "send needs either --subscription FILE (Web Push) or --server URL and --token TOKEN \
             (OpenPush v0.1), not both",
        )),
    }
}

fn read_input(name: Option<&str>, what: &str) -> Result<Vec<u8>, Failure> {
    match name {
        None | Some("-") => {
            let mut out = Vec::new();
            std::io::stdin()
                .read_to_end(&mut out)
                .map_err(|e| Failure::runtime(format!("cannot read {what} from stdin: {e}")))?;
            Ok(out)
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| Failure::usage(format!("cannot read {what} {path}: {e}"))),
    }
}

fn web_push(args: &Send, subscription: &str) -> Result<(), Failure> {
    if subscription == "-" && args.message.as_deref().is_none_or(|m| m == "-") {
        return Err(Failure::usage(
            "the subscription and the message cannot both come from stdin: give one a file",
        ));
    }
    let text = read_input(Some(subscription), "the subscription")?;
    let sub: Subscription = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| miniserde::json::from_str(t).ok())
        .ok_or_else(|| {
            Failure::usage(format!(
                "{subscription} is not a subscription: {{\"endpoint\":…,\"keys\":{{\"p256dh\":…,\"auth\":…}}}}"
            ))
        })?;
    let public = keys::parse_public(&sub.keys.p256dh).ok_or_else(|| {
        Failure::usage("the subscription's p256dh is not a P-256 public key (base64url, 65 bytes)")
    })?;
    let auth = base64::decode(sub.keys.auth.trim())
        .filter(|a| a.len() == 16)
        .ok_or_else(|| Failure::usage("the subscription's auth is not 16 bytes of base64url"))?;
    let endpoint = net::parse_url(&sub.endpoint, "the subscription's endpoint")?;
    let vapid_header = vapid_header(args, &sub.endpoint)?;
    let plaintext = read_input(args.message.as_deref(), "the message")?;
    let body = ece::encrypt(
        &ece::Receiver {
            public: &public,
            auth: &auth,
        },
        &plaintext,
    )
    .map_err(|_| {
        Failure::usage(format!(
            "the message is {} bytes; a Web Push message holds at most {}",
            plaintext.len(),
            ece::MAX_PLAINTEXT_BYTES
        ))
    })?;
    let headers = push_headers(args, vapid_header)?;
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let r = net::request(&endpoint, "POST", &headers, &body)?;
    println!("{} {}", r.head.status, r.head.reason);
    for name in ["Location", "TTL"] {
        if let Some(value) = r.head.header(name) {
            println!("{name}: {value}");
        }
    }
    if (200..300).contains(&r.head.status) {
        Ok(())
    } else {
        Err(Failure::runtime(format!(
            "the push service refused the message: {}",
            net::explain(&r)
        )))
    }
}

/// The `Authorization` header of `--vapid-key` and `--subject` for a push to `endpoint`.
fn vapid_header(args: &Send, endpoint: &str) -> Result<Option<String>, Failure> {
    Ok(match (&args.vapid_key, &args.subject) {
        (Some(file), Some(subject)) => {
            if !subject.starts_with("mailto:") && !subject.starts_with("https://") {
                return Err(Failure::usage(
                    "--subject must be a mailto: or https:// URL",
                ));
            }
            let key = read_vapid_key(file)?;
            let origin = url::origin_of(endpoint)
                .ok_or_else(|| Failure::usage("the subscription's endpoint has no origin"))?;
            Some(vapid::header(&key, &origin, subject, now_secs()))
        }
        (None, None) => None,
        _ => return Err(Failure::usage("--vapid-key and --subject go together")),
    })
}

/// The headers of a push: its encoding, `TTL`, and `Urgency`, `Topic` and `Authorization`
/// when given.
fn push_headers(
    args: &Send,
    vapid: Option<String>,
) -> Result<Vec<(&'static str, String)>, Failure> {
    let ttl = args.ttl.unwrap_or(2_419_200).to_string();
    let mut headers = vec![
        ("Content-Type", "application/octet-stream".to_owned()),
        ("Content-Encoding", "aes128gcm".to_owned()),
        ("TTL", ttl),
    ];
    if let Some(urgency) = &args.urgency {
        if !URGENCIES.contains(&urgency.as_str()) {
            return Err(Failure::usage(
                "--urgency must be very-low, low, normal or high",
            ));
        }
        headers.push(("Urgency", urgency.clone()));
    }
    if let Some(topic) = &args.topic {
        if topic.is_empty()
            || topic.len() > 32
            || !topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Failure::usage(
                "--topic must be 1 to 32 base64url characters",
            ));
        }
        headers.push(("Topic", topic.clone()));
    }
    if let Some(h) = vapid {
        headers.push(("Authorization", h));
    }
    Ok(headers)
}

fn openpush(args: &Send, server: &str, token: &str) -> Result<(), Failure> {
    let server = net::parse_url(server, "--server")?;
    if args.vapid_key.is_some() || args.subject.is_some() {
        return Err(Failure::usage(
            "--vapid-key and --subject are for Web Push (--subscription)",
        ));
    }
    let data = args.message.as_deref().ok_or_else(|| {
        Failure::usage("give the message as a JSON object argument, e.g. '{\"title\":\"Hi\"}'")
    })?;
    if json::field(&format!("{{\"data\":{data}}}"), "data").is_none_or(|d| !d.starts_with('{')) {
        return Err(Failure::usage(
            "the message must be a JSON object, e.g. '{\"title\":\"Hi\"}'",
        ));
    }
    let mut body = format!("{{\"token\":{},\"data\":{data}", json::quote(token));
    if let Some(urgency) = &args.urgency {
        let priority = match urgency.as_str() {
            "high" => "high",
            "normal" => "normal",
            _ => {
                return Err(Failure::usage(
                    "an OpenPush message's --urgency is normal or high",
                ));
            }
        };
        body.push_str(&format!(",\"priority\":\"{priority}\""));
    }
    if let Some(ttl) = args.ttl {
        body.push_str(&format!(",\"time_to_live\":{ttl}"));
    }
    if let Some(topic) = &args.topic {
        body.push_str(&format!(",\"collapse_key\":{}", json::quote(topic)));
    }
    body.push('}');
    let r = net::request(
        &server.join("/message"),
        "POST",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )?;
    println!("{} {}", r.head.status, r.head.reason);
    if r.head.status == 200 {
        println!("{}", r.text().trim());
        Ok(())
    } else {
        Err(Failure::runtime(format!(
            "the server refused the message: {}",
            net::explain(&r)
        )))
    }
}

fn read_vapid_key(file: &str) -> Result<p256::SecretKey, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("cannot read the VAPID key {file}: {e}")))?;
    vapid::from_text(&text).ok_or_else(|| {
        Failure::usage(format!(
            "{file} is not a P-256 private key (PEM); make one with openpush-client vapid-keygen"
        ))
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn vapid_keygen(args: &VapidKeygen) -> Result<(), Failure> {
    let key = keys::generate();
    let path = Path::new(&args.out);
    state::write_new(path, vapid::to_pem(&key).as_bytes()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::usage(format!(
                "{} exists; remove it or choose another --out",
                args.out
            ))
        } else {
            Failure::runtime(format!("cannot write {}: {e}", args.out))
        }
    })?;
    println!("{}", keys::public_b64(&key));
    Ok(())
}

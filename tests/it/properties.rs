//! Property tests: the fuzz targets' properties (`fuzz/`) on stable, in the ordinary test
//! suite, plus the queue rules against a `BTreeMap` model (`tests/model/queue.rs`).
//!
//! Each property runs on random bytes, which mostly probe the refusals, and on inputs built
//! to be valid, which reach the accepting paths; proptest shrinks a failure to a small case.

use openpush::config::{Config, Limits};
use openpush::http::parse::{Framing, ParseError, decode_chunked, max_chunked_bytes, parse_head};
use openpush::http::percent_decode;
use openpush::json::{compact, object_field};
use openpush::sse::push_event;
use openpush::store::{
    AppRecord, ClientRecord, Content, MessageRecord, Priority, Sequence, SequenceEvent, UserRecord,
};
use proptest::collection::vec;
use proptest::prelude::*;

#[path = "../model/queue.rs"]
mod model;
#[path = "../model/sse.rs"]
mod sse_model;

fn small_limits() -> Limits {
    Limits {
        max_head_bytes: 1024,
        max_headers: 8,
        max_body_bytes: 4096,
        ..Limits::default()
    }
}

/// A head's length fits the input and the limit, its body fits the limit, and it is
/// complete at exactly that length, not a byte before.
fn check_head(data: &[u8], limits: &Limits) -> Option<usize> {
    let head = parse_head(data, limits).ok()??;
    assert!(head.len <= data.len() && head.len <= limits.max_head_bytes);
    assert!(!matches!(head.framing, Framing::Length(n) if n > limits.max_body_bytes));
    let again = parse_head(&data[..head.len], limits).map(|h| h.map(|h| h.len));
    assert_eq!(again, Ok(Some(head.len)));
    assert!(matches!(
        parse_head(&data[..head.len - 1], limits),
        Ok(None)
    ));
    Some(head.len)
}

/// A chunked body fits the limit and the input, decodes the same from exactly the bytes it
/// took and is incomplete a byte before; an incomplete body holds a bounded buffer.
fn check_chunked(data: &[u8], max: usize) -> Result<Option<Vec<u8>>, ParseError> {
    match decode_chunked(data, max)? {
        Some((body, used)) => {
            assert!(body.len() <= max && used <= data.len() && used <= max_chunked_bytes(max));
            let again = decode_chunked(&data[..used], max);
            assert_eq!(again, Ok(Some((body.clone(), used))));
            assert_eq!(decode_chunked(&data[..used - 1], max), Ok(None));
            Ok(Some(body))
        }
        None => {
            assert!(
                data.len() <= max_chunked_bytes(max),
                "{} bytes pending",
                data.len()
            );
            Ok(None)
        }
    }
}

/// Compact output is a fixed point, never longer, and its fields are compact values.
fn check_compact(data: &[u8]) -> Option<Vec<u8>> {
    let c = compact(data).ok()?;
    assert_eq!(compact(&c).as_deref(), Ok(&c[..]));
    assert!(c.len() <= data.len());
    for key in ["data", "token", "a", ""] {
        if let Some(v) = object_field(&c, key) {
            assert_eq!(compact(v).as_deref(), Ok(v));
        }
    }
    Some(c)
}

/// Bytes that decode as a record are exactly what that record encodes to.
fn check_records(data: &[u8]) {
    UserRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
    ClientRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
    AppRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
    MessageRecord::decode(data).inspect(|r| assert_eq!(r.encode(), data));
}

/// Every `%` starts an escape of two hex digits.
fn strictly_escaped(s: &str) -> bool {
    s.split('%')
        .skip(1)
        .all(|r| r.len() >= 2 && r.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit))
}

/// A JSON value as text with random insignificant whitespace.
fn json_value() -> impl Strategy<Value = String> {
    let ws = prop::sample::select(vec!["", " ", "\n", "\t ", "\r\n"]);
    let string = "[a-z\"\\\\/é\u{1F600} ]{0,6}".prop_map(|s| openpush::json::string(&s));
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
        string.clone(),
    ];
    leaf.prop_recursive(4, 32, 4, move |inner| {
        let ws = ws.clone();
        prop_oneof![
            vec((inner.clone(), ws.clone()), 0..4).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(v, w)| format!("{w}{v}{w}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            vec((string.clone(), inner, ws), 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v, w)| format!("{w}{k}{w}:{w}{v}{w}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// A body in chunks of random sizes, with chunk extensions and trailers.
fn chunked(body: &[u8], sizes: &[usize], ext: bool, trailer: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().expect("cycle")).clamp(1, rest.len());
        out.extend_from_slice(format!("{n:x}").as_bytes());
        if ext {
            out.extend_from_slice(b";name=value");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        out.extend_from_slice(b"Expires: never\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn message_record() -> impl Strategy<Value = MessageRecord> {
    (
        (any::<u64>(), any::<u64>(), 0u8..3, 0u8..6),
        "\\PC{0,8}",
        proptest::option::of("\\PC{0,8}"),
        vec(any::<u8>(), 0..16),
        vec(any::<u8>(), 0..32),
        proptest::option::of(("[-_A-Za-z0-9]{1,8}", 0u8..3)),
    )
        .prop_map(
            |(
                (expires_at, posted_at, content, level),
                registration_id,
                collapse_key,
                extras,
                data,
                sequence,
            )| {
                MessageRecord {
                    expires_at,
                    posted_at,
                    content: [Content::Json, Content::Text, Content::Opaque][usize::from(content)],
                    priority: Priority::from_level(level),
                    registration_id,
                    collapse_key,
                    extras,
                    data,
                    sequence: sequence.map(|(id, event)| Sequence {
                        id,
                        event: [
                            SequenceEvent::Message,
                            SequenceEvent::Clear,
                            SequenceEvent::Delete,
                        ][usize::from(event)],
                    }),
                }
            },
        )
}

fn queue_op() -> impl Strategy<Value = model::Op> {
    use model::{APPS, CLIENTS, Op};
    prop_oneof![
        3 => (0..=CLIENTS * APPS, 0u8..12, proptest::option::of(0u8..3)).prop_map(
            |(app, ttl_secs, collapse)| Op::Enqueue { app, ttl_secs, collapse }
        ),
        1 => (0..CLIENTS, 0u8..8).prop_map(|(client, back)| Op::Confirm { client, back }),
        1 => (1u8..6).prop_map(|max| Op::Sweep { max }),
        2 => (0..CLIENTS, 0u8..12, 1u8..8)
            .prop_map(|(client, back, limit)| Op::Backlog { client, back, limit }),
        1 => any::<u8>().prop_map(|step| Op::Tick { step }),
        1 => prop_oneof![
            Just(Op::Restart),
            (0..CLIENTS * APPS).prop_map(|app| Op::Abort { app }),
        ],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn request_heads_fit_their_input_and_limits(data in vec(any::<u8>(), 0..512)) {
        check_head(&data, &small_limits());
    }

    #[test]
    fn valid_heads_parse_at_exactly_their_length(
        method in "GET|POST|DELETE|PUT",
        path in "/[a-z0-9%/?=&]{0,40}",
        headers in vec(("[A-Za-z-]{1,12}", "[ -~]{0,20}"), 0..6),
        length in proptest::option::of(0usize..5000),
        lf_only in any::<bool>(),
        body in vec(any::<u8>(), 0..8),
    ) {
        let eol = if lf_only { "\n" } else { "\r\n" };
        let mut head = format!("{method} {path} HTTP/1.1{eol}");
        for (name, value) in &headers {
            // Framing and the headers that may appear only once are set apart.
            let singleton = ["content-length", "transfer-encoding", "host", "authorization"]
                .iter()
                .any(|s| name.eq_ignore_ascii_case(s));
            if !singleton {
                head += &format!("{name}: {value}{eol}");
            }
        }
        if let Some(n) = length {
            head += &format!("Content-Length: {n}{eol}");
        }
        head += eol;
        let data = [head.as_bytes(), &body].concat();
        let limits = small_limits();
        match parse_head(&data, &limits) {
            // Bare LF line endings are refused (a proxy in front may read them otherwise).
            Err(e) if lf_only => prop_assert!(matches!(e, ParseError::Malformed(_)), "{:?}", e),
            Ok(Some(_)) if lf_only => prop_assert!(false, "a bare-LF head was accepted"),
            Ok(Some(_)) => prop_assert_eq!(check_head(&data, &limits), Some(head.len())),
            Ok(None) => prop_assert!(false, "complete head reported partial"),
            Err(e) => prop_assert!(
                e == ParseError::BodyTooLarge && length.unwrap_or(0) > limits.max_body_bytes
                    || e == ParseError::HeadTooLarge,
                "{:?}", e
            ),
        }
    }

    #[test]
    fn chunked_bodies_stay_within_limits(data in vec(any::<u8>(), 0..512), max in 0usize..64) {
        let _ = check_chunked(&data, max);
    }

    #[test]
    fn chunked_bodies_decode_to_what_was_sent(
        body in vec(any::<u8>(), 0..300),
        sizes in vec(1usize..80, 1..6),
        ext in any::<bool>(),
        trailer in any::<bool>(),
        max in 0usize..400,
    ) {
        let wire = chunked(&body, &sizes, ext, trailer);
        match check_chunked(&wire, max) {
            Ok(Some(got)) => prop_assert_eq!(got, body),
            Ok(None) => prop_assert!(false, "complete body reported partial"),
            Err(e) => {
                prop_assert_eq!(e, ParseError::BodyTooLarge);
                prop_assert!(body.len() > max || wire.len() > max_chunked_bytes(max));
            }
        }
    }

    #[test]
    fn endless_chunk_extensions_are_refused(junk in 1usize..20_000) {
        let wire = [b"1;".as_slice(), &vec![b'x'; junk]].concat();
        let _ = check_chunked(&wire, 64);
    }

    #[test]
    fn compact_is_a_fixed_point_on_bytes(data in vec(any::<u8>(), 0..256)) {
        check_compact(&data);
    }

    #[test]
    fn compact_accepts_json_and_keeps_its_fields(text in json_value()) {
        let c = check_compact(text.as_bytes());
        prop_assert!(c.is_some(), "valid JSON refused: {}", text);
        let wrapped = format!("{{ \"data\" : {text} , \"a\":1}}");
        let c = check_compact(wrapped.as_bytes()).expect("wrapped");
        let want = compact(text.as_bytes()).ok();
        prop_assert_eq!(object_field(&c, "data"), want.as_deref());
    }

    #[test]
    fn sse_events_read_back_as_sent(id in proptest::option::of(any::<u64>()), data in vec(
        prop::sample::select(vec![b'a', b'{', b'\r', b'\n', b' ', b':']), 0..24)
    ) {
        let mut out = Vec::new();
        push_event(&mut out, id, &data);
        prop_assert_eq!(sse_model::read_event(&out), (id, sse_model::normalize_breaks(&data)));
    }

    #[test]
    fn records_decode_only_their_own_encoding(data in vec(any::<u8>(), 0..64)) {
        check_records(&data);
    }

    #[test]
    fn records_round_trip(m in message_record(), admin in any::<bool>(), id in any::<u64>(),
                          a in "\\PC{0,8}", b in "\\PC{0,8}") {
        let bytes = m.encode();
        check_records(&bytes);
        prop_assert_eq!(MessageRecord::decode(&bytes), Some(m));
        let u = UserRecord { name: a.clone(), password_hash: b.clone(), admin };
        prop_assert_eq!(UserRecord::decode(&u.encode()), Some(u));
        let c = ClientRecord { user_id: id, name: a.clone(), key: b.clone() };
        prop_assert_eq!(ClientRecord::decode(&c.encode()), Some(c));
        let app = AppRecord { client_id: id, registration_id: a, routing_token: b };
        prop_assert_eq!(AppRecord::decode(&app.encode()), Some(app));
    }

    #[test]
    fn percent_decoding_is_strict_and_undoes_encoding(s in "[%+0-9a-fA-F -~é]{0,12}") {
        if let Some(decoded) = percent_decode(&s) {
            prop_assert!(strictly_escaped(&s), "{:?} decoded to {:?}", s, decoded);
        }
        let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
        let decoded = percent_decode(&encoded);
        prop_assert_eq!(decoded.as_deref(), Some(s.as_str()));
    }

    #[test]
    fn config_errors_name_an_existing_line(lines in vec(prop_oneof![
        "[a-z_]{1,24} ?= ?[0-9a-z.:\\[\\]\"#' ]{0,16}",
        "(keepalive_secs|max_headers|listen|log_level|metrics_public|db) = [0-9a-z.:\"]{0,12}",
        "#.{0,10}",
        "\\PC{0,12}",
    ], 0..6)) {
        let text = lines.join("\n");
        let mut config = Config::default();
        match config.apply_text(&text) {
            Ok(()) => drop(config.validate()),
            Err(e) => {
                let line = e.0.strip_prefix("line ").and_then(|r| r.split(':').next());
                let line: usize = line.and_then(|n| n.parse().ok()).expect("names a line");
                prop_assert!((1..=text.lines().count()).contains(&line), "{}", e);
            }
        }
    }
}

proptest! {
    // Each case builds a database and commits once a step; the fuzz target goes deeper.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn queue_follows_the_model(ops in vec(queue_op(), 1..60)) {
        model::check(&ops);
    }
}

/// The fuzz targets' seed inputs (`fuzz/corpus/<target>/`) through the same checks, so the
/// interesting cases run on stable in every `cargo test`.
#[test]
fn fuzz_seed_corpus_keeps_its_properties() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let seeds = |target: &str| -> Vec<Vec<u8>> {
        let dir = std::fs::read_dir(root.join(target)).expect("seed corpus");
        dir.map(|e| std::fs::read(e.expect("entry").path()).expect("seed"))
            .collect()
    };
    for data in seeds("parse_request") {
        check_head(&data, &small_limits());
    }
    for data in seeds("decode_chunked") {
        let _ = check_chunked(&data, 64);
    }
    for data in seeds("json_compact") {
        check_compact(&data);
    }
    for data in seeds("record_codec") {
        check_records(&data);
    }
    for data in seeds("percent_decode") {
        let s = String::from_utf8(data).expect("UTF-8 seed");
        if percent_decode(&s).is_some() {
            assert!(strictly_escaped(&s), "{s:?}");
        }
    }
    for data in seeds("queue_model") {
        model::check(&model::Op::decode(&data));
    }
}

#[test]
fn queue_model_covers_limit_collapse_and_expiry() {
    use model::Op;
    let post = |app, ttl_secs, collapse| Op::Enqueue {
        app,
        ttl_secs,
        collapse,
    };
    let mut ops = vec![
        post(0, 5, Some(1)),
        post(0, 5, Some(1)),
        post(1, 5, Some(1)),
    ];
    ops.extend((0..6).map(|_| post(0, 9, None)));
    ops.extend([
        post(0, 9, Some(1)),
        post(0, 0, Some(2)),
        Op::Tick { step: 0 },
        Op::Tick { step: 4 },
        Op::Backlog {
            client: 0,
            back: 11,
            limit: 7,
        },
        Op::Sweep { max: 1 },
        Op::Confirm { client: 0, back: 3 },
        Op::Sweep { max: 5 },
        Op::Restart,
        post(0, 9, Some(1)),
        Op::Abort { app: 0 },
        post(4, 3, None),
    ]);
    model::check(&ops);
}

//! The voice gateway's per-socket state machine under hostile frames (proptest;
//! `CONFAB_FUZZ_CASES` cases, 256 by default). Properties: no panic; a refusal is a close with a
//! voice code; nothing after a close; requests reach the driver only once identified; an op the
//! protocol has but with a malformed payload is a decode error (4002), not an unknown op (4001).

use proptest::prelude::*;
use serde_json::{Value, json};
use signaling::conn::{Action, ConnConfig, Connection};
use signaling::protocol::close;
use std::time::{Duration, Instant};

fn cases() -> u32 {
    std::env::var("CONFAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// Every op a client may send.
const OPS: &[&str] = &["identify", "resume", "heartbeat", "offer", "mute", "server_mute", "camera", "share", "leave"];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn real_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| json!({"op": "heartbeat", "d": {"nonce": n}}).to_string()),
        ".{0,40}".prop_map(|t| json!({"op": "identify", "d": {"token": t}}).to_string()),
        (".{0,20}", ".{0,20}")
            .prop_map(|(t, s)| json!({"op": "resume", "d": {"token": t, "session_id": s}}).to_string()),
        ".{0,200}".prop_map(|sdp| json!({"op": "offer", "d": {"sdp": sdp}}).to_string()),
        (any::<bool>(), any::<bool>())
            .prop_map(|(m, d)| json!({"op": "mute", "d": {"self_mute": m, "self_deaf": d}}).to_string()),
        (any::<u64>(), any::<bool>())
            .prop_map(|(u, m)| json!({"op": "server_mute", "d": {"user_id": u.to_string(), "mute": m}}).to_string()),
        any::<bool>().prop_map(|on| json!({"op": "camera", "d": {"on": on}}).to_string()),
        any::<bool>().prop_map(|on| json!({"op": "share", "d": {"on": on}}).to_string()),
        Just(json!({"op": "leave", "d": {}}).to_string()),
    ]
}

fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => real_frame(),
        2 => (prop::sample::select(OPS), json_value()).prop_map(|(op, d)| json!({"op": op, "d": d}).to_string()),
        1 => ("[a-z_]{0,12}", json_value()).prop_map(|(op, d)| json!({"op": op, "d": d}).to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => ".{0,64}",
    ]
}

fn connection() -> Connection {
    let cfg = ConnConfig {
        heartbeat_interval: Duration::from_secs(40),
        max_frame: 8192,
        rate: chat::auth::Limit { burst: 10_000, per: Duration::from_millis(1) },
    };
    Connection::new(cfg, Instant::now()).0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_sequence_of_frames(frames in prop::collection::vec(frame(), 1..24)) {
        let t0 = Instant::now();
        let mut conn = connection();
        let (mut identified, mut authenticating, mut closed) = (false, false, false);
        for (i, text) in frames.iter().enumerate() {
            let action = conn.handle_text(text, t0 + Duration::from_millis(i as u64 * 10));
            if closed {
                prop_assert_eq!(action, None, "after a close");
                continue;
            }
            let parsed: Option<Value> = serde_json::from_str(text).ok();
            let op = parsed.as_ref().and_then(|v| v.get("op")).and_then(Value::as_str).map(str::to_owned);
            match action {
                Some(Action::Close(code, _)) => {
                    prop_assert!((4000..5000).contains(&code), "{}", code);
                    if code == close::UNKNOWN_OP {
                        let op = op.unwrap_or_default();
                        prop_assert!(!OPS.contains(&op.as_str()), "{} is an op the protocol has: {}", op, text);
                    }
                    closed = true;
                }
                Some(Action::Send(_)) => prop_assert_eq!(op.as_deref(), Some("heartbeat")),
                Some(Action::Identify { .. } | Action::Resume { .. }) => {
                    prop_assert!(!identified && !authenticating, "authentication handed over twice");
                    authenticating = true;
                    if i % 2 == 0 {
                        conn.identified();
                        (identified, authenticating) = (true, false);
                    }
                }
                Some(Action::Request(_)) => prop_assert!(identified, "a request before identification: {}", text),
                None => prop_assert!(false, "an open connection ignored {}", text),
            }
        }
    }
}

/// Found by the property above: a malformed `camera` or `share` was called an unknown op.
#[test]
fn a_malformed_camera_or_share_is_a_decode_error() {
    for text in [r#"{"op":"camera","d":{}}"#, r#"{"op":"share","d":{"on":"yes"}}"#] {
        let action = connection().handle_text(text, Instant::now());
        assert!(matches!(action, Some(Action::Close(close::DECODE_ERROR, _))), "{text}: {action:?}");
    }
}

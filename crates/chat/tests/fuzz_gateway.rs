//! The chat gateway's per-socket state machine under hostile frames (proptest;
//! `CONFAB_FUZZ_CASES` cases, 256 by default): noise, JSON of any shape, real frames mutated, in
//! any order. Properties: no panic; every refusal is a close with a gateway code; nothing after a
//! close; IDENTIFY/RESUME reach the driver only before identification, member and presence
//! requests only after; a heartbeat is always acknowledged while open.

use chat::auth::Limit;
use chat::gateway::connection::{Action, ConnConfig, Connection};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn cases() -> u32 {
    std::env::var("CONFAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
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

/// Frames a real client sends.
fn real_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| json!({"op": 1, "d": n}).to_string()),
        ".{0,40}".prop_map(|t| json!({"op": 2, "d": {"token": t}}).to_string()),
        (".{0,20}", ".{0,20}", any::<u64>())
            .prop_map(|(t, s, q)| json!({"op": 6, "d": {"token": t, "session_id": s, "seq": q}}).to_string()),
        prop_oneof![Just("online"), Just("idle"), Just("dnd"), Just("invisible"), Just("away")]
            .prop_map(|s| json!({"op": 3, "d": {"status": s}}).to_string()),
        (any::<u64>(), any::<Option<u32>>())
            .prop_map(|(g, l)| json!({"op": 8, "d": {"guild_id": g.to_string(), "limit": l}}).to_string()),
    ]
}

/// A real frame with a few characters replaced, inserted or removed.
fn mutated_frame() -> impl Strategy<Value = String> {
    (real_frame(), prop::collection::vec((any::<usize>(), any::<char>(), 0u8..3), 1..4)).prop_map(|(f, edits)| {
        let mut chars: Vec<char> = f.chars().collect();
        for (at, c, kind) in edits {
            let i = at % (chars.len() + 1);
            match kind {
                0 => chars.insert(i, c),
                1 if i < chars.len() => drop(chars.remove(i)),
                _ if i < chars.len() => chars[i] = c,
                _ => {}
            }
        }
        chars.into_iter().collect()
    })
}

fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => real_frame(),
        3 => mutated_frame(),
        2 => (any::<i64>(), json_value()).prop_map(|(op, d)| json!({"op": op % 16, "d": d}).to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => ".{0,64}",
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    Waiting,
    Identified,
    Closed,
}

fn connection() -> Connection {
    let cfg = ConnConfig {
        heartbeat_interval: Duration::from_secs(40),
        max_frame: 4096,
        rate: Limit { burst: 10_000, per: Duration::from_millis(1) },
    };
    Connection::new(cfg, Instant::now()).0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_sequence_of_frames(frames in prop::collection::vec((frame(), any::<bool>()), 1..24)) {
        let t0 = Instant::now();
        let mut conn = connection();
        let mut model = Model::Waiting;
        for (i, (text, accept)) in frames.iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 10);
            let action = conn.handle_text(text, now);
            if model == Model::Closed {
                prop_assert_eq!(action, None, "after a close");
                continue;
            }
            let heartbeat = serde_json::from_str::<Value>(text)
                .is_ok_and(|v| v == json!({"op": 1, "d": v["d"]}) && v["d"].is_u64());
            match action {
                Some(Action::Close(code)) => {
                    prop_assert!(!heartbeat, "a heartbeat closed the socket: {:?}", code);
                    prop_assert!((4000..5000).contains(&code.code()) || code.code() == 1009, "{:?}", code);
                    model = Model::Closed;
                }
                Some(Action::Send(ack)) => {
                    prop_assert!(ack.contains("\"op\":11"), "{}", ack);
                }
                Some(Action::Identify { .. } | Action::Resume { .. }) => {
                    prop_assert_eq!(model, Model::Waiting, "authentication handed over twice");
                    // The driver's answer: a session (or, for a refused RESUME, back to waiting).
                    if *accept {
                        conn.identified();
                        model = Model::Identified;
                    } else {
                        conn.resume_failed();
                        model = Model::Waiting;
                    }
                }
                Some(Action::SetStatus(_) | Action::RequestMembers(_)) => {
                    prop_assert_eq!(model, Model::Identified, "a request before identification");
                }
                None => prop_assert!(false, "an open connection ignored {}", text),
            }
            if heartbeat {
                prop_assert!(model != Model::Closed);
            }
        }
        // Still a state machine: its deadline holds.
        let late = conn.handle_timeout(t0 + Duration::from_secs(3600));
        prop_assert_eq!(late.is_some(), model != Model::Closed);
    }

    #[test]
    fn oversized_frames_close_with_1009(extra in 1usize..10_000) {
        let mut conn = connection();
        let text = format!("{{\"op\":1,\"d\":\"{}\"}}", "x".repeat(4096 + extra));
        let action = conn.handle_text(&text, Instant::now());
        prop_assert!(matches!(action, Some(Action::Close(c)) if c.code() == 1009), "{:?}", action);
    }
}

#[test]
fn a_flood_is_rate_limited_and_the_socket_closed() {
    let cfg = ConnConfig {
        heartbeat_interval: Duration::from_secs(40),
        max_frame: 4096,
        rate: Limit { burst: 5, per: Duration::from_secs(1) },
    };
    let (mut conn, _) = Connection::new(cfg, Instant::now());
    let now = Instant::now();
    let actions: Vec<_> = (0..10).map(|_| conn.handle_text(r#"{"op":1,"d":1}"#, now)).collect();
    assert!(actions[..5].iter().all(|a| matches!(a, Some(Action::Send(_)))));
    assert!(matches!(actions[5], Some(Action::Close(c)) if c.code() == 4008));
    assert!(actions[6..].iter().all(Option::is_none));
}

//! The per-socket state machine of the voice gateway: HELLO, heartbeat deadline, parsing, size and
//! rate limits, and the identify/resume handshake. Sans-IO: fed text and time, returns [`Action`]s.

use crate::protocol::{ClientMsg, ServerMsg, close};
use chat::auth::{Limit, RateLimiter};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ConnConfig {
    pub heartbeat_interval: Duration,
    pub max_frame: usize,
    pub rate: Limit,
}

#[derive(Debug, PartialEq)]
pub enum Action {
    Send(ServerMsg),
    Close(u16, &'static str),
    /// Verify the token and join; then [`Connection::identified`] (or close).
    Identify {
        token: String,
    },
    /// Verify the token and reattach the session; then [`Connection::identified`] (or close).
    Resume {
        token: String,
        session_id: String,
    },
    /// A request of an identified participant (offer, mute, server_mute, leave).
    Request(ClientMsg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingIdentify,
    Authenticating,
    Identified,
    Closed,
}

#[derive(Debug)]
pub struct Connection {
    cfg: ConnConfig,
    phase: Phase,
    deadline: Instant,
    rate: RateLimiter<()>,
}

fn grace(i: Duration) -> Duration {
    i + i / 2
}

impl Connection {
    pub fn new(cfg: ConnConfig, now: Instant) -> (Connection, ServerMsg) {
        let hello = ServerMsg::Hello { heartbeat_interval: cfg.heartbeat_interval.as_millis() as u64 };
        let c = Connection {
            cfg,
            phase: Phase::AwaitingIdentify,
            deadline: now + grace(cfg.heartbeat_interval),
            rate: RateLimiter::new(cfg.rate, 1),
        };
        (c, hello)
    }

    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<Action> {
        (self.phase != Phase::Closed && now >= self.deadline)
            .then(|| self.close(close::SESSION_TIMEOUT, "no heartbeat in time"))
    }

    pub fn identified(&mut self) {
        if self.phase == Phase::Authenticating {
            self.phase = Phase::Identified;
        }
    }

    pub fn handle_text(&mut self, text: &str, now: Instant) -> Option<Action> {
        if self.phase == Phase::Closed {
            return None;
        }
        if text.len() > self.cfg.max_frame {
            return Some(self.close(close::TOO_BIG, "frame too large"));
        }
        if self.rate.check(&(), now).is_err() {
            return Some(self.close(close::RATE_LIMITED, "rate limited"));
        }
        // A frame is an object, and so is its `d`: serde would also read `["identify", ["t"]]`.
        let shape_ok = chat::gateway::closing::is_object(text)
            && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                .is_ok_and(|f| f.get("d").is_none_or(serde_json::Value::is_object));
        if !shape_ok {
            return Some(self.close(close::DECODE_ERROR, "decode error"));
        }
        let msg = match serde_json::from_str::<ClientMsg>(text) {
            Ok(m) => m,
            Err(e) => {
                // Tell an unknown op from a malformed frame: both are closes, with different codes.
                let known_shape = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_owned));
                return Some(match known_shape {
                    Some(op) if !KNOWN_OPS.contains(&op.as_str()) => self.close(close::UNKNOWN_OP, "unknown op"),
                    _ => {
                        tracing::debug!(error = %e, "undecodable voice frame");
                        self.close(close::DECODE_ERROR, "decode error")
                    }
                });
            }
        };
        match (self.phase, msg) {
            (_, ClientMsg::Heartbeat { nonce }) => {
                self.deadline = now + grace(self.cfg.heartbeat_interval);
                Some(Action::Send(ServerMsg::HeartbeatAck { nonce }))
            }
            (Phase::AwaitingIdentify, ClientMsg::Identify { token }) => {
                self.phase = Phase::Authenticating;
                Some(Action::Identify { token })
            }
            (Phase::AwaitingIdentify, ClientMsg::Resume { token, session_id }) => {
                self.phase = Phase::Authenticating;
                Some(Action::Resume { token, session_id })
            }
            (_, ClientMsg::Identify { .. } | ClientMsg::Resume { .. }) => {
                Some(self.close(close::ALREADY_AUTHENTICATED, "already identified"))
            }
            (Phase::Identified, req) => Some(Action::Request(req)),
            (_, _) => Some(self.close(close::NOT_AUTHENTICATED, "identify first")),
        }
    }

    fn close(&mut self, code: u16, reason: &'static str) -> Action {
        self.phase = Phase::Closed;
        Action::Close(code, reason)
    }
}

/// Every op of [`ClientMsg`]: a malformed payload of one of these is a decode error, not an
/// unknown op (the fuzz test found `camera` and `share` missing here).
const KNOWN_OPS: &[&str] =
    &["identify", "resume", "heartbeat", "offer", "mute", "server_mute", "camera", "share", "leave"];

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(now: Instant) -> Connection {
        let cfg = ConnConfig {
            heartbeat_interval: Duration::from_secs(10),
            max_frame: 1024,
            rate: Limit { burst: 5, per: Duration::from_secs(1) },
        };
        Connection::new(cfg, now).0
    }

    #[test]
    fn handshake_and_requests() {
        let t = Instant::now();
        let mut c = conn(t);
        assert_eq!(
            c.handle_text(r#"{"op":"leave","d":{}}"#, t),
            Some(Action::Close(close::NOT_AUTHENTICATED, "identify first"))
        );
        let mut c2 = conn(t);
        assert_eq!(
            c2.handle_text(r#"{"op":"identify","d":{"token":"x"}}"#, t),
            Some(Action::Identify { token: "x".into() })
        );
        c2.identified();
        assert_eq!(
            c2.handle_text(r#"{"op":"mute","d":{"self_mute":true}}"#, t),
            Some(Action::Request(ClientMsg::Mute { self_mute: true, self_deaf: false }))
        );
        assert_eq!(
            c2.handle_text(r#"{"op":"heartbeat","d":{"nonce":7}}"#, t),
            Some(Action::Send(ServerMsg::HeartbeatAck { nonce: 7 }))
        );
        assert!(matches!(
            c2.handle_text(r#"{"op":"identify","d":{"token":"x"}}"#, t),
            Some(Action::Close(close::ALREADY_AUTHENTICATED, _))
        ));
        drop(c);
    }

    #[test]
    fn bad_input_and_timeouts() {
        let t = Instant::now();
        let cases = [
            ("nope", close::DECODE_ERROR),
            (r#"{"op":"dance","d":{}}"#, close::UNKNOWN_OP),
            (r#"{"op":"identify","d":{"tok":1}}"#, close::DECODE_ERROR),
            (r#"{"op":"identify"}"#, close::DECODE_ERROR),
            (r#"["identify",{"token":"x"}]"#, close::DECODE_ERROR),
            (r#"{"op":"identify","d":["x"]}"#, close::DECODE_ERROR),
            (r#"{"op":"heartbeat","d":[1]}"#, close::DECODE_ERROR),
        ];
        for (text, code) in cases {
            assert!(matches!(conn(t).handle_text(text, t), Some(Action::Close(c, _)) if c == code), "{text}");
        }
        assert!(matches!(conn(t).handle_text(&"x".repeat(2000), t), Some(Action::Close(close::TOO_BIG, _))));
        let mut c = conn(t);
        for _ in 0..5 {
            c.handle_text(r#"{"op":"heartbeat","d":{"nonce":1}}"#, t);
        }
        assert!(matches!(
            c.handle_text(r#"{"op":"heartbeat","d":{"nonce":1}}"#, t),
            Some(Action::Close(close::RATE_LIMITED, _))
        ));
        let mut c = conn(t);
        assert_eq!(c.handle_timeout(t + Duration::from_secs(14)), None);
        assert!(matches!(
            c.handle_timeout(t + Duration::from_secs(15)),
            Some(Action::Close(close::SESSION_TIMEOUT, _))
        ));
    }
}

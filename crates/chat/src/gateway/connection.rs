//! The per-socket state machine: HELLO, heartbeats, IDENTIFY/RESUME parsing, limits. Sans-IO: the
//! driver feeds it text frames and the time, and carries out the [`Action`]s it returns.

use super::protocol::{CloseCode, Identify, Inbound, PresenceUpdate, RequestMembers, Resume, control, op};
use crate::auth::{Limit, RateLimiter};
use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ConnConfig {
    pub heartbeat_interval: Duration,
    /// Largest accepted text frame, in bytes.
    pub max_frame: usize,
    /// Frames a client may send (heartbeats included).
    pub rate: Limit,
}

/// What the driver must do after a frame or a timeout.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Send(String),
    Close(CloseCode),
    /// Authenticate the token, start a session, send READY, then call [`Connection::identified`].
    Identify {
        token: String,
    },
    /// Authenticate, reattach the session and replay, then call [`Connection::identified`]; or, if
    /// the session cannot be resumed, send INVALID_SESSION and call [`Connection::resume_failed`].
    Resume {
        token: String,
        session_id: String,
        seq: u64,
    },
    SetStatus(super::protocol::Status),
    /// Send a page of the guild's members (GUILD_MEMBERS_CHUNK) and subscribe to its presence.
    RequestMembers(super::protocol::RequestMembers),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingIdentify,
    /// IDENTIFY or RESUME handed to the driver, answer pending.
    Authenticating,
    Identified,
    Closed,
}

#[derive(Debug)]
pub struct Connection {
    cfg: ConnConfig,
    phase: Phase,
    /// A heartbeat (and, before identification, an IDENTIFY) must arrive before this.
    deadline: Instant,
    rate: RateLimiter<()>,
}

impl Connection {
    /// A new connection and its HELLO frame.
    pub fn new(cfg: ConnConfig, now: Instant) -> (Connection, String) {
        let hello =
            control(op::HELLO, serde_json::json!({ "heartbeat_interval": cfg.heartbeat_interval.as_millis() as u64 }));
        let conn = Connection {
            cfg,
            phase: Phase::AwaitingIdentify,
            deadline: now + grace(cfg.heartbeat_interval),
            rate: RateLimiter::new(cfg.rate, 1),
        };
        (conn, hello)
    }

    pub fn is_identified(&self) -> bool {
        self.phase == Phase::Identified
    }

    /// When [`Connection::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<Action> {
        if self.phase != Phase::Closed && now >= self.deadline {
            return Some(self.close(CloseCode::SessionTimedOut));
        }
        None
    }

    pub fn handle_text(&mut self, text: &str, now: Instant) -> Option<Action> {
        if self.phase == Phase::Closed {
            return None;
        }
        if text.len() > self.cfg.max_frame {
            return Some(self.close(CloseCode::TooBig));
        }
        if self.rate.check(&(), now).is_err() {
            return Some(self.close(CloseCode::RateLimited));
        }
        let Some(frame) = object::<Inbound>(text) else {
            return Some(self.close(CloseCode::DecodeError));
        };
        let raw = frame.d.map_or("null", |d| d.get());
        match frame.op {
            op::HEARTBEAT => {
                self.deadline = now + grace(self.cfg.heartbeat_interval);
                Some(Action::Send(control(op::HEARTBEAT_ACK, ())))
            }
            op::IDENTIFY => self.authenticate(raw, |id: Identify| Action::Identify { token: id.token }),
            op::RESUME => self.authenticate(raw, |r: Resume| Action::Resume {
                token: r.token,
                session_id: r.session_id,
                seq: r.seq,
            }),
            op::PRESENCE_UPDATE => {
                if self.phase != Phase::Identified {
                    return Some(self.close(CloseCode::NotAuthenticated));
                }
                match object::<PresenceUpdate>(raw) {
                    Some(p) => Some(Action::SetStatus(p.status)),
                    None => Some(self.close(CloseCode::DecodeError)),
                }
            }
            op::REQUEST_GUILD_MEMBERS => {
                if self.phase != Phase::Identified {
                    return Some(self.close(CloseCode::NotAuthenticated));
                }
                match object::<RequestMembers>(raw) {
                    Some(r) => Some(Action::RequestMembers(r)),
                    None => Some(self.close(CloseCode::DecodeError)),
                }
            }
            _ => Some(self.close(CloseCode::UnknownOpcode)),
        }
    }

    /// The driver started or resumed a session for this connection.
    pub fn identified(&mut self) {
        if self.phase == Phase::Authenticating {
            self.phase = Phase::Identified;
        }
    }

    /// The driver refused a RESUME with INVALID_SESSION; the client may IDENTIFY.
    pub fn resume_failed(&mut self) {
        if self.phase == Phase::Authenticating {
            self.phase = Phase::AwaitingIdentify;
        }
    }

    fn authenticate<'a, T: Deserialize<'a>>(
        &mut self,
        raw: &'a str,
        action: impl FnOnce(T) -> Action,
    ) -> Option<Action> {
        if self.phase != Phase::AwaitingIdentify {
            return Some(self.close(CloseCode::AlreadyAuthenticated));
        }
        match object::<T>(raw) {
            Some(payload) => {
                self.phase = Phase::Authenticating;
                Some(action(payload))
            }
            None => Some(self.close(CloseCode::DecodeError)),
        }
    }

    fn close(&mut self, code: CloseCode) -> Action {
        self.phase = Phase::Closed;
        Action::Close(code)
    }
}

/// `text` parsed as `T`, only if it is a JSON object (serde's derived structs also take arrays).
fn object<'a, T: Deserialize<'a>>(text: &'a str) -> Option<T> {
    super::closing::is_object(text).then(|| serde_json::from_str(text).ok()).flatten()
}

/// Clients heartbeat every interval; allow half an interval of lateness.
fn grace(interval: Duration) -> Duration {
    interval + interval / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ConnConfig {
        ConnConfig {
            heartbeat_interval: Duration::from_secs(10),
            max_frame: 4096,
            rate: Limit { burst: 5, per: Duration::from_secs(1) },
        }
    }

    #[test]
    fn hello_then_identify_then_heartbeat() {
        let t0 = Instant::now();
        let (mut c, hello) = Connection::new(cfg(), t0);
        assert!(hello.contains("\"op\":10") && hello.contains("\"heartbeat_interval\":10000"), "{hello}");
        let a = c.handle_text(r#"{"op":2,"d":{"token":"abc"}}"#, t0);
        assert_eq!(a, Some(Action::Identify { token: "abc".into() }));
        c.identified();
        assert!(c.is_identified());
        let a = c.handle_text(r#"{"op":1,"d":3}"#, t0 + Duration::from_secs(9));
        assert!(matches!(a, Some(Action::Send(ref s)) if s.contains("\"op\":11")));
        assert_eq!(c.poll_timeout(), t0 + Duration::from_secs(24));
        assert_eq!(c.handle_timeout(t0 + Duration::from_secs(23)), None);
        assert_eq!(c.handle_timeout(t0 + Duration::from_secs(24)), Some(Action::Close(CloseCode::SessionTimedOut)));
    }

    #[test]
    fn missing_identify_times_out() {
        let t0 = Instant::now();
        let (mut c, _) = Connection::new(cfg(), t0);
        assert_eq!(c.handle_timeout(t0 + Duration::from_secs(15)), Some(Action::Close(CloseCode::SessionTimedOut)));
        assert_eq!(c.handle_text(r#"{"op":1}"#, t0), None, "closed connections ignore input");
    }

    #[test]
    fn bad_input_gets_the_matching_close_code() {
        let t0 = Instant::now();
        let cases: &[(&str, CloseCode)] = &[
            ("not json", CloseCode::DecodeError),
            (r#"{"op":2,"d":{"tok":1}}"#, CloseCode::DecodeError),
            (r#"{"op":42}"#, CloseCode::UnknownOpcode),
            (r#"{"op":0,"d":{}}"#, CloseCode::UnknownOpcode),
            (r#"{"op":3,"d":{"status":"idle"}}"#, CloseCode::NotAuthenticated),
            // Arrays are not frames, nor payloads, though serde's structs would read them.
            ("[1,2]", CloseCode::DecodeError),
            (r#"[2,{"token":"t"}]"#, CloseCode::DecodeError),
            (r#"{"op":2,"d":["t"]}"#, CloseCode::DecodeError),
            (r#"{"op":6,"d":["t","s",1]}"#, CloseCode::DecodeError),
            ("  \n[1]", CloseCode::DecodeError),
        ];
        for (text, code) in cases {
            let (mut c, _) = Connection::new(cfg(), t0);
            assert_eq!(c.handle_text(text, t0), Some(Action::Close(*code)), "{text}");
        }
        let (mut c, _) = Connection::new(cfg(), t0);
        let big = format!(r#"{{"op":1,"d":"{}"}}"#, "x".repeat(5000));
        assert_eq!(c.handle_text(&big, t0), Some(Action::Close(CloseCode::TooBig)));
    }

    #[test]
    fn identify_twice_and_rate_limit() {
        let t0 = Instant::now();
        let (mut c, _) = Connection::new(cfg(), t0);
        c.handle_text(r#"{"op":2,"d":{"token":"a"}}"#, t0);
        assert_eq!(
            c.handle_text(r#"{"op":2,"d":{"token":"a"}}"#, t0),
            Some(Action::Close(CloseCode::AlreadyAuthenticated))
        );

        let (mut c, _) = Connection::new(cfg(), t0);
        for _ in 0..5 {
            assert!(matches!(c.handle_text(r#"{"op":1}"#, t0), Some(Action::Send(_))));
        }
        assert_eq!(c.handle_text(r#"{"op":1}"#, t0), Some(Action::Close(CloseCode::RateLimited)));
    }

    #[test]
    fn failed_resume_allows_identify() {
        let t0 = Instant::now();
        let (mut c, _) = Connection::new(cfg(), t0);
        let a = c.handle_text(r#"{"op":6,"d":{"token":"t","session_id":"s","seq":4}}"#, t0);
        assert_eq!(a, Some(Action::Resume { token: "t".into(), session_id: "s".into(), seq: 4 }));
        c.resume_failed();
        assert!(matches!(c.handle_text(r#"{"op":2,"d":{"token":"t"}}"#, t0), Some(Action::Identify { .. })));
        c.identified();
        assert_eq!(
            c.handle_text(r#"{"op":3,"d":{"status":"idle"}}"#, t0),
            Some(Action::SetStatus(super::super::protocol::Status::Idle))
        );
    }
}

//! The tokio task behind one `/voice` WebSocket: moves frames between the socket, the
//! [`Connection`] machine and the shared [`Voice`] state, and talks to the media engine.

use crate::conn::{Action, ConnConfig, Connection};
use crate::protocol::{ClientMsg, ErrorCode, RoomMode, ServerMsg, close};
use crate::rooms::JoinError;
use crate::server::{Link, Outbound, Voice};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use chat::auth::{Limit, VoiceGrant};
use chat::id::now_ms;
use chat::store::VoiceMode;
use sfu::{MediaMode, PeerId, PeerOptions, SfuError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// `GET /voice`: upgrades to the voice gateway protocol.
pub async fn handler(State(voice): State<Voice>, ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => return axum::response::IntoResponse::into_response(chat::api::error::ApiError::from(r)),
    };
    let cap = voice.cfg.max_frame_bytes.max(1024) * 4;
    // A small first read buffer (tungstenite zero-fills 128 KiB by default); it grows for an offer.
    ws.max_message_size(cap).max_frame_size(cap).read_buffer_size(4096).on_upgrade(move |socket| {
        let tracker = voice.chat.sockets.clone();
        tracker.track_future(run(voice, socket))
    })
}

struct Driver {
    voice: Voice,
    conn_id: u64,
    conn: Connection,
    rx: Option<mpsc::Receiver<Outbound>>,
    peer: Option<(PeerId, chat::id::Id)>,
}

enum Step {
    Continue,
    /// Close with this code (None: the socket is already gone).
    End(Option<u16>),
    /// The participant left on purpose: close normally, do not keep the session.
    Left,
}

async fn run(voice: Voice, mut ws: WebSocket) {
    let n = voice.cfg.frames_per_minute.max(1);
    let cfg = ConnConfig {
        heartbeat_interval: Duration::from_millis(voice.cfg.heartbeat_interval_ms.max(1)),
        max_frame: voice.cfg.max_frame_bytes,
        rate: Limit { burst: n, per: Duration::from_secs(60) / n },
    };
    let (conn, hello) = Connection::new(cfg, Instant::now());
    let conn_id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let mut d = Driver { voice, conn_id, conn, rx: None, peer: None };
    metrics::gauge!("confab_voice_connections").increment(1);
    let end = if send(&mut ws, &hello).await { d.serve(&mut ws).await } else { Step::End(None) };
    metrics::gauge!("confab_voice_connections").decrement(1);
    let code = match end {
        Step::End(code) => code,
        Step::Left => Some(close::DISCONNECTED),
        Step::Continue => None,
    };
    let label = code.map_or_else(|| "peer".to_owned(), |c| c.to_string());
    metrics::counter!("confab_voice_closes_total", "code" => label).increment(1);
    // Detach first: the session is resumable (or gone) from the moment this socket stops serving it.
    if let Some((peer, _)) = d.peer {
        d.voice.unlink(peer, d.conn_id);
        if !matches!(end, Step::Left) {
            d.voice.rooms(|r| ((), r.detach(peer, Instant::now())));
        }
    }
    if let Some(code) = code {
        chat::gateway::closing::close(&mut ws, code, close::reason(code)).await;
    }
}

async fn send(ws: &mut WebSocket, msg: &ServerMsg) -> bool {
    let text = serde_json::to_string(msg).unwrap_or_default();
    ws.send(Message::Text(text.into())).await.is_ok()
}

async fn next(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn serve(&mut self, ws: &mut WebSocket) -> Step {
        let shutdown = self.voice.chat.shutdown.clone();
        loop {
            let deadline = tokio::time::Instant::from_std(self.conn.poll_timeout());
            let action = tokio::select! {
                _ = shutdown.cancelled() => return Step::End(Some(close::GOING_AWAY)),
                _ = tokio::time::sleep_until(deadline) => self.conn.handle_timeout(Instant::now()),
                out = next(&mut self.rx) => match out {
                    Some(Outbound::Msg(m)) => Some(Action::Send(m)),
                    Some(Outbound::Close(code)) => return Step::End(Some(code)),
                    // Replaced by a resume elsewhere, or too slow.
                    None => return Step::End(Some(close::SESSION_NO_LONGER_VALID)),
                },
                msg = ws.recv() => match msg {
                    Some(Ok(Message::Text(t))) => self.conn.handle_text(t.as_str(), Instant::now()),
                    Some(Ok(Message::Binary(_))) => Some(Action::Close(close::DECODE_ERROR, "binary frame")),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(_))) | None => return Step::End(None),
                    Some(Err(e)) => return Step::End(chat::gateway::closing::code_for(&e)),
                },
            };
            let Some(action) = action else { continue };
            match self.perform(action, ws).await {
                Step::Continue => {}
                end => return end,
            }
        }
    }

    async fn perform(&mut self, action: Action, ws: &mut WebSocket) -> Step {
        match action {
            Action::Send(m) => {
                if send(ws, &m).await {
                    Step::Continue
                } else {
                    Step::End(None)
                }
            }
            Action::Close(code, _) => Step::End(Some(code)),
            Action::Identify { token } => self.identify(&token).await,
            Action::Resume { token, session_id } => self.resume(&token, &session_id).await,
            Action::Request(req) => self.request(req, ws).await,
        }
    }

    fn link(&mut self, peer: PeerId) {
        let (tx, rx) = mpsc::channel(256);
        self.rx = Some(rx);
        self.voice.link(peer, Link { conn: self.conn_id, tx });
    }

    /// The grant in `token`, if it verifies, the login it was minted for is still live, and the
    /// user is still a member of the guild, not timed out (a kick or ban voids earlier tokens).
    async fn grant(&self, token: &str) -> Option<VoiceGrant> {
        let grant = self.voice.chat.voice_tokens.verify(token, now_ms()).ok()?;
        let access = self.voice.chat.access(grant.guild, grant.user).await.ok()??;
        if access.timed_out(now_ms()) {
            return None;
        }
        if let Some(login) = &grant.login {
            let live = self.voice.chat.store.sessions.session(login, now_ms()).await;
            if !matches!(live, Ok(Some(_))) || self.voice.chat.is_revoked(login) {
                return None;
            }
        }
        Some(grant)
    }

    /// A session joined with a login revoked, or by a member removed, while it was being set up
    /// ends at once.
    async fn recheck(&self, grant: &VoiceGrant) {
        if let Some(login) = &grant.login
            && self.voice.chat.is_revoked(login)
        {
            self.voice.rooms(|r| ((), r.revoke(login)));
        }
        self.voice.chat.caches.forget_member(grant.guild, grant.user);
        if matches!(self.voice.chat.access(grant.guild, grant.user).await, Ok(None)) {
            let e = chat::app::Ejection { guild: grant.guild, user: Some(grant.user), channel: None };
            self.voice.rooms(|r| ((), r.eject(&e)));
        }
    }

    async fn identify(&mut self, token: &str) -> Step {
        let Some(grant) = self.grant(token).await else {
            return Step::End(Some(close::AUTHENTICATION_FAILED));
        };
        let session_id = chat::auth::new_token();
        let slots = self.voice.cfg.slots();
        let mode = self.voice.cfg.mode.unwrap_or(match grant.mode {
            VoiceMode::Hybrid => RoomMode::Hybrid,
            VoiceMode::Sfu => RoomMode::Sfu,
            VoiceMode::Mcu => RoomMode::Mcu,
        });
        let voice = self.voice.clone();
        // Link before the join's outputs are applied, so READY reaches this socket.
        let joined = voice.rooms(|r| match r.join(&grant, session_id, mode, slots) {
            Ok((peer, out)) => {
                self.link(peer);
                (Ok(peer), out)
            }
            Err(e) => (Err(e), Vec::new()),
        });
        match joined {
            Ok(peer) => {
                self.peer = Some((peer, grant.room));
                self.conn.identified();
                tracing::info!(peer, user = %grant.user, room = %grant.room, "joined voice");
                self.recheck(&grant).await;
                Step::Continue
            }
            Err(JoinError::RoomClosed) => Step::End(Some(close::DISCONNECTED)),
        }
    }

    async fn resume(&mut self, token: &str, session_id: &str) -> Step {
        let Some(grant) = self.grant(token).await else {
            return Step::End(Some(close::AUTHENTICATION_FAILED));
        };
        let slots = self.voice.cfg.slots();
        let voice = self.voice.clone();
        let resumed = voice.rooms(|r| match r.resume(session_id, grant.user, slots) {
            Some((peer, out)) => {
                self.link(peer);
                (Some(peer), out)
            }
            None => (None, Vec::new()),
        });
        match resumed {
            Some(peer) => {
                self.peer = Some((peer, grant.room));
                self.conn.identified();
                self.recheck(&grant).await;
                Step::Continue
            }
            None => Step::End(Some(close::SESSION_NO_LONGER_VALID)),
        }
    }

    async fn request(&mut self, req: ClientMsg, ws: &mut WebSocket) -> Step {
        let Some((peer, _)) = self.peer else { return Step::End(Some(close::NOT_AUTHENTICATED)) };
        let error = |code, message: String| ServerMsg::Error { code, message };
        let reply = match req {
            ClientMsg::Offer { sdp } => {
                let info = self.voice.rooms(|r| (r.negotiate(peer).then(|| r.media_info(peer)).flatten(), Vec::new()));
                if let Some((room, mode, label)) = info {
                    let mode = match mode {
                        RoomMode::Hybrid => MediaMode::Hybrid,
                        RoomMode::Sfu => MediaMode::Sfu,
                        RoomMode::Mcu => MediaMode::Mcu,
                    };
                    match self.voice.sfu.add_peer(room, peer, &sdp, PeerOptions { mode, label }).await {
                        Ok(answer) => {
                            // Mute and camera set before the offer apply to the new media peer too.
                            self.voice.rooms(|r| ((), r.negotiated(peer, answer.camera)));
                            ServerMsg::Answer { sdp: answer.sdp }
                        }
                        Err(e) => {
                            self.voice.rooms(|r| ((), r.negotiation_failed(peer)));
                            // The parser's own words (positions, addresses) stay in the log.
                            tracing::info!(peer, error = %e, "offer refused");
                            let (code, message) = sdp_error(&e);
                            error(code, message.into())
                        }
                    }
                } else {
                    error(ErrorCode::AlreadyNegotiated, "this session already has an answer".into())
                }
            }
            ClientMsg::Mute { self_mute, self_deaf } => {
                self.voice.rooms(|r| ((), r.set_self_mute(peer, self_mute, self_deaf)));
                return Step::Continue;
            }
            ClientMsg::Camera { on } => {
                self.voice.rooms(|r| ((), r.set_camera(peer, on)));
                return Step::Continue;
            }
            ClientMsg::Share { on } => {
                self.voice.rooms(|r| ((), r.set_share(peer, on)));
                return Step::Continue;
            }
            ClientMsg::ServerMute { user_id, mute } => {
                match self.voice.rooms(|r| match r.set_server_mute(peer, &user_id, mute) {
                    Ok(out) => (None, out),
                    Err(code) => (Some(code), Vec::new()),
                }) {
                    None => return Step::Continue,
                    Some(code) => error(code, format!("cannot server-mute {user_id}")),
                }
            }
            ClientMsg::Leave {} => {
                self.voice.unlink(peer, self.conn_id);
                self.voice.rooms(|r| ((), r.leave(peer)));
                self.peer = None;
                return Step::Left;
            }
            // The connection machine answers these itself.
            _ => return Step::Continue,
        };
        if send(ws, &reply).await { Step::Continue } else { Step::End(None) }
    }
}

/// The error code and a short, stable message for a refused offer.
fn sdp_error(e: &SfuError) -> (ErrorCode, &'static str) {
    match e {
        SfuError::BadSdp(_) => (ErrorCode::BadSdp, "the offer is not valid SDP"),
        SfuError::NoSendAudio => {
            (ErrorCode::BadSdp, "the offer has no sendonly or sendrecv audio m-line (the microphone)")
        }
        SfuError::NoVp8 => (ErrorCode::BadSdp, "the offer's video m-lines have no VP8"),
        SfuError::NoOpus => (ErrorCode::NoOpus, "the microphone's m-line does not offer Opus"),
        SfuError::Full => (ErrorCode::Unavailable, "the media engine is full"),
        _ => (ErrorCode::Unavailable, "the media engine cannot take this call now"),
    }
}

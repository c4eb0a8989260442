//! The tokio task behind one `/gateway` WebSocket: it moves frames between the socket, the
//! [`Connection`] machine and the [`Hub`](super::hub::Hub), and does the I/O the machine asks for.

use super::connection::{Action, ConnConfig, Connection};
use super::hub::{Delivery, Link, Topic};
use super::protocol::{CloseCode, Event, RequestMembers, Status, control, op};
use crate::api::error::{ApiError, code};
use crate::api::extract::caller_for_token;
use crate::api::members_list::member_json;
use crate::app::App;
use crate::id::Id;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

/// `GET /gateway`: upgrades to the gateway protocol, within the connection cap.
pub async fn handler(State(app): State<App>, ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => return ApiError::from(r).into_response(),
    };
    let Ok(permit) = app.gateway_slots.clone().try_acquire_owned() else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, "gateway connection limit reached")
            .into_response();
    };
    // The library cap is a backstop; the protocol's own (smaller) limit closes with 1009 cleanly.
    let hard_cap = app.cfg.max_frame_bytes.max(1024) * 16;
    // tungstenite zero-fills its whole read buffer (128 KiB by default) on the first read, which made
    // an idle socket cost ~140 KB; client frames are small, and the buffer grows for a big one.
    ws.max_message_size(hard_cap).max_frame_size(hard_cap).read_buffer_size(READ_BUFFER).on_upgrade(move |socket| {
        let tracker = app.sockets.clone();
        tracker.track_future(run(app, socket, permit))
    })
}

/// Initial WebSocket read buffer per connection.
const READ_BUFFER: usize = 4096;

/// Most dispatches written with one flush.
const SEND_BATCH: usize = 64;

struct Driver {
    app: App,
    conn_id: u64,
    conn: Connection,
    kick: Arc<AtomicU16>,
    rx: Option<mpsc::Receiver<Delivery>>,
    session: Option<(String, Id)>,
}

async fn run(app: App, mut ws: WebSocket, _permit: OwnedSemaphorePermit) {
    let cfg = ConnConfig {
        heartbeat_interval: app.cfg.heartbeat_interval(),
        max_frame: app.cfg.max_frame_bytes,
        rate: app.cfg.gateway_rate(),
    };
    let (conn, hello) = Connection::new(cfg, Instant::now());
    let conn_id = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let mut d = Driver { app, conn_id, conn, kick: Arc::new(AtomicU16::new(0)), rx: None, session: None };
    metrics::gauge!("confab_gateway_connections").increment(1);
    let close = match ws.send(Message::Text(hello.into())).await {
        Ok(()) => d.serve(&mut ws).await,
        Err(_) => None,
    };
    metrics::gauge!("confab_gateway_connections").decrement(1);
    let code = close.map_or_else(|| "peer".to_owned(), |c| c.code().to_string());
    metrics::counter!("confab_gateway_closes_total", "code" => code).increment(1);
    // Detach first: the session is resumable from the moment this socket stops serving it.
    if let Some((sid, _)) = &d.session {
        d.app.hub.detach(sid, d.conn_id, Instant::now());
    }
    if let Some(code) = close {
        super::closing::close(&mut ws, code.code(), code.reason()).await;
    }
}

impl Driver {
    /// Runs until the connection ends; returns the close code to send, if any.
    async fn serve(&mut self, ws: &mut WebSocket) -> Option<CloseCode> {
        let shutdown = self.app.shutdown.clone();
        loop {
            let deadline = tokio::time::Instant::from_std(self.conn.poll_timeout());
            let action = tokio::select! {
                _ = shutdown.cancelled() => return Some(CloseCode::GoingAway),
                _ = tokio::time::sleep_until(deadline) => self.conn.handle_timeout(Instant::now()),
                delivery = next(&mut self.rx) => match delivery {
                    Some(first) => match self.send_queued(first, ws).await {
                        Ok(()) => None,
                        Err(_) => return Some(CloseCode::GoingAway),
                    },
                    // The hub let go of this socket: too slow, or resumed elsewhere.
                    None => return Some(CloseCode::from_code(self.kick.load(Ordering::Relaxed)).unwrap_or(CloseCode::SlowConsumer)),
                },
                msg = ws.recv() => match msg {
                    Some(Ok(Message::Text(t))) => self.conn.handle_text(t.as_str(), Instant::now()),
                    Some(Ok(Message::Binary(_))) => Some(Action::Close(CloseCode::DecodeError)),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(_))) | None => return None,
                    Some(Err(e)) => return super::closing::code_for(&e).and_then(CloseCode::from_code),
                },
            };
            if let Some(action) = action
                && let Some(code) = self.perform(action, ws).await
            {
                return Some(code);
            }
        }
    }

    async fn perform(&mut self, action: Action, ws: &mut WebSocket) -> Option<CloseCode> {
        match action {
            Action::Send(text) => ws.send(Message::Text(text.into())).await.err().map(|_| CloseCode::GoingAway),
            Action::Close(code) => Some(code),
            Action::SetStatus(status) => {
                self.set_status(status).await;
                None
            }
            Action::Identify { token } => self.identify(&token).await.err(),
            Action::Resume { token, session_id, seq } => self.resume(&token, &session_id, seq, ws).await.err(),
            Action::RequestMembers(r) => self.request_members(r).await.err(),
        }
    }

    /// Writes `first` and whatever else is already queued, then flushes once: under load a socket's
    /// backlog leaves in one write instead of a syscall per message.
    async fn send_queued(&mut self, first: Delivery, ws: &mut WebSocket) -> Result<(), axum::Error> {
        let (seq, ev) = first;
        ws.feed(Message::Text(ev.frame(seq).into())).await?;
        let mut sent = 1;
        for _ in 1..SEND_BATCH {
            let Some(Ok((seq, ev))) = self.rx.as_mut().map(|rx| rx.try_recv()) else { break };
            sent += 1;
            ws.feed(Message::Text(ev.frame(seq).into())).await?;
        }
        metrics::counter!("confab_gateway_dispatches_total").increment(sent);
        ws.flush().await
    }

    fn link(&mut self) -> Link {
        let (tx, rx) = mpsc::channel(self.app.cfg.outbound_queue.max(self.app.cfg.replay_buffer + 16));
        self.rx = Some(rx);
        Link { conn: self.conn_id, tx, kick: self.kick.clone() }
    }

    async fn identify(&mut self, token: &str) -> Result<(), CloseCode> {
        let app = self.app.clone();
        let caller = caller_for_token(&app, token)
            .await
            .map_err(|_| CloseCode::Internal)?
            .ok_or(CloseCode::AuthenticationFailed)?;
        let user = caller.user;
        let session_id = crate::auth::new_token();
        let (ready, guilds) = ready_payload(&app, user, &session_id).await.map_err(|_| CloseCode::Internal)?;
        let mut topics: Vec<Topic> = guilds.iter().map(|(g, _)| Topic::Guild(*g)).collect();
        // Presence of large guilds only on request (op 8).
        topics.extend(guilds.iter().filter(|(_, large)| !large).map(|(g, _)| Topic::Presence(*g)));
        topics.push(Topic::User(user));
        let guild_ids: Vec<Id> = guilds.iter().map(|(g, _)| *g).collect();
        let link = self.link();
        let ready = Event::new("READY", &ready);
        let login = &caller.token_hash;
        let came_online = app.hub.create_session(&session_id, user, login, topics, link, &ready, Instant::now());
        if let (Some(journal), Some(snap)) = (app.journal.get(), app.hub.snapshot(&session_id)) {
            // Kept before READY leaves (this task sends it), so another node can take the
            // session over from its first dispatch.
            if let Err(e) = journal.save(&snap).await {
                tracing::warn!(error = %e, "a session's snapshot was not kept: it resumes on this node only");
            }
        }
        self.session = Some((session_id, user));
        if !app.watch_login(login, user, caller.expires_at) {
            // Logged out while this identify was under way: the hub may not have seen the revocation.
            app.revoke_login(login, user);
        }
        self.conn.identified();
        if came_online {
            app.publish_presence(user, Status::Online, &guild_ids);
        }
        Ok(())
    }

    async fn resume(&mut self, token: &str, session_id: &str, seq: u64, ws: &mut WebSocket) -> Result<(), CloseCode> {
        let app = self.app.clone();
        let caller = caller_for_token(&app, token)
            .await
            .map_err(|_| CloseCode::Internal)?
            .ok_or(CloseCode::AuthenticationFailed)?;
        let user = caller.user;
        if !app.watch_login(&caller.token_hash, user, caller.expires_at) {
            return Err(CloseCode::AuthenticationFailed);
        }
        let link = self.link();
        let resumed = Event::new("RESUMED", &json!({ "session_id": session_id }));
        let mut result = app.hub.resume(session_id, user, &caller.token_hash, seq, link, &resumed);
        if result.is_err() && app.journal.get().is_some() {
            // Not a session of this node: in a cluster it may be another node's, rebuilt here.
            let link = self.link();
            result = app.take_over(session_id, user, &caller.token_hash, seq, link, &resumed).await;
        }
        let outcome = if result.is_ok() { "resumed" } else { "invalid_session" };
        metrics::counter!("confab_gateway_resumes_total", "outcome" => outcome).increment(1);
        match result {
            Ok((replay, back)) => {
                self.session = Some((session_id.to_string(), user));
                self.conn.identified();
                if let Some(status) = back {
                    // Back from offline (its socket had gone): tell the guilds again.
                    match app.store.guilds.guilds_of(user).await {
                        Ok(guilds) => {
                            app.publish_presence(user, status, &guilds.iter().map(|g| g.id).collect::<Vec<_>>())
                        }
                        Err(e) => tracing::warn!(error = %e, "presence update: guild lookup failed"),
                    }
                }
                for (s, ev) in replay {
                    ws.send(Message::Text(ev.frame(s).into())).await.map_err(|_| CloseCode::GoingAway)?;
                }
            }
            Err(_) => {
                self.rx = None;
                self.conn.resume_failed();
                ws.send(Message::Text(control(op::INVALID_SESSION, false).into()))
                    .await
                    .map_err(|_| CloseCode::GoingAway)?;
            }
        }
        Ok(())
    }

    /// Op 8: a page of a guild's members (with presence) as GUILD_MEMBERS_CHUNK, and the guild's
    /// presence updates from now on. Subscribed first, so no change between the chunk's statuses
    /// and the subscription is lost. A guild the session is not in gets an empty chunk.
    async fn request_members(&mut self, r: RequestMembers) -> Result<(), CloseCode> {
        let Some((sid, user)) = self.session.clone() else { return Ok(()) };
        let app = self.app.clone();
        let member = app.hub.subscribe_session(&sid, Topic::Guild(r.guild_id), Topic::Presence(r.guild_id));
        let limit = r.limit.unwrap_or(MEMBERS_CHUNK).clamp(1, MEMBERS_CHUNK);
        let members = if member {
            app.store.members.members_page(r.guild_id, r.after, limit).await.map_err(|_| CloseCode::Internal)?
        } else {
            Vec::new()
        };
        let next = (members.len() == limit as usize).then(|| members.last().map(|m| m.user_id)).flatten();
        let members: Vec<_> = members.iter().map(|m| member_json(&app, m)).collect();
        let chunk = json!({ "guild_id": r.guild_id, "members": members, "next_after": next });
        app.hub.deliver_to(&sid, user, &Event::new("GUILD_MEMBERS_CHUNK", &chunk), Instant::now());
        Ok(())
    }

    async fn set_status(&mut self, status: Status) {
        let Some((_, user)) = self.session else {
            return;
        };
        if self.app.hub.set_status(user, status) {
            match self.app.store.guilds.guilds_of(user).await {
                Ok(guilds) => self.app.publish_presence(user, status, &guilds.iter().map(|g| g.id).collect::<Vec<_>>()),
                Err(e) => tracing::warn!(error = %e, "presence update: guild lookup failed"),
            }
        }
    }
}

/// Members sent per GUILD_MEMBERS_CHUNK, at most.
const MEMBERS_CHUNK: u32 = 1000;

/// READY's payload: the user, their guilds with channels, members (with presence; in a large guild
/// only the user's own entry, `large: true`) and read states. Returns the guilds and whether each
/// is large.
async fn ready_payload(
    app: &App,
    user: Id,
    session_id: &str,
) -> Result<(serde_json::Value, Vec<(Id, bool)>), crate::store::StoreError> {
    let me = app.store.users.user(user).await?;
    let mut guilds = Vec::new();
    let mut ids = Vec::new();
    for g in app.store.guilds.guilds_of(user).await? {
        let channels = app.store.channels.channels(g.id).await?;
        let member_count = app.store.members.member_count(g.id).await?;
        let large = member_count as usize > app.cfg.large_guild_threshold;
        let members: Vec<_> = if large {
            let own = app.store.members.members_page(g.id, Some(Id(user.0 - 1)), 1).await?;
            own.iter().filter(|m| m.user_id == user).map(|m| present(member_json(app, m), user)).collect()
        } else {
            app.store.members.members(g.id).await?.iter().map(|m| present(member_json(app, m), user)).collect()
        };
        let read_states = app.store.read_states.read_states(user, g.id).await?;
        ids.push((g.id, large));
        let voice_states = app.voice_states.of_guild(g.id);
        let me = app.access(g.id, user).await?;
        guilds.push(json!({
            "guild": g, "channels": channels, "members": members, "member_count": member_count, "large": large,
            "read_states": read_states, "voice_states": voice_states, "roles": app.store.roles.roles(g.id).await?,
            "permissions": me.map(|a| a.effective()), "rank": me.map(|a| a.rank.min(crate::perms::MAX_SAFE_RANK)),
        }));
    }
    Ok((json!({ "v": 1, "session_id": session_id, "user": me, "guilds": guilds }), ids))
}

/// READY is built before its session counts towards presence, but the client reads it as the
/// session's first dispatch: by then its own user is present (online, or the status another of their
/// sessions set), never offline.
fn present(mut member: serde_json::Value, user: Id) -> serde_json::Value {
    if member["user_id"] == json!(user) && member["status"] == json!(Status::Offline) {
        member["status"] = json!(Status::Online);
    }
    member
}

async fn next(rx: &mut Option<mpsc::Receiver<Delivery>>) -> Option<Delivery> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

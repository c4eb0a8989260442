//! The shared state of the chat plane, handed to every route and gateway socket.

use crate::auth::{Cooldowns, LoginWatch, Passwords, RateLimiter, VoiceTokens};
use crate::config::ChatConfig;
use crate::gateway::broker::{Broker, Forget, LocalBroker, Notice};
use crate::gateway::hub::{Hub, HubConfig, Topic};
use crate::gateway::presence::PresenceBatch;
use crate::gateway::protocol::{Event, Status};
use crate::id::{Id, IdGen};
use crate::store::Store;
use crate::voice::{VoiceState, VoiceStates};
use serde_json::json;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub cfg: ChatConfig,
    pub ids: IdGen,
    pub hub: Arc<Hub>,
    pub broker: Arc<dyn Broker>,
    pub login_by_account: Mutex<RateLimiter<String>>,
    pub login_by_ip: Mutex<RateLimiter<IpAddr>>,
    /// Messages per user, and slow mode per (channel, user).
    pub posts: Mutex<RateLimiter<Id>>,
    pub slow_mode: Mutex<Cooldowns<(Id, Id)>>,
    /// Where every password is hashed and checked: bounded in concurrency and memory.
    pub passwords: Passwords,
    /// Fired on shutdown: gateway sockets send a close frame and end.
    pub shutdown: CancellationToken,
    /// Gateway socket tasks, awaited on shutdown.
    pub sockets: TaskTracker,
    pub gateway_slots: Arc<Semaphore>,
    pub next_conn: AtomicU64,
    pub voice_tokens: VoiceTokens,
    pub watch_tokens: crate::auth::WatchTokens,
    /// Attachment bytes (see [`crate::blobs`]), and the uploads allowed in at once.
    pub blobs: Arc<dyn crate::blobs::BlobStore>,
    pub uploads: Arc<Semaphore>,
    pub voice_states: VoiceStates,
    pub stream_states: crate::streams::StreamStates,
    /// Where publishers push RTMP (`rtmp://host:port/live`), once the live engine listens.
    rtmp_base: Mutex<Option<String>>,
    /// Logins, channels and memberships, as the last store reads said (see [`crate::cache`]).
    pub caches: crate::cache::Caches,
    /// Presence changes waiting for the next flush (see [`App::publish_presence`]).
    pub(crate) presence: Mutex<PresenceBatch>,
    /// Logins with live connections, their expiries, and recent revocations.
    pub logins: Mutex<LoginWatch>,
    pub(crate) revocations: broadcast::Sender<Revoked>,
    pub(crate) ejections: broadcast::Sender<Ejection>,
    /// Presence on the other nodes of a cluster (empty on one node).
    pub(crate) roster: Mutex<crate::gateway::roster::Roster>,
    /// Where voice rooms are served (a cluster's placement; `/voice` here when unset).
    pub(crate) placer: std::sync::OnceLock<Arc<dyn crate::voice::VoicePlacer>>,
    /// Where sessions are kept for other nodes to take over (a cluster's; unset on one node).
    pub(crate) journal: std::sync::OnceLock<Arc<dyn crate::gateway::journal::Journal>>,
    /// The stream's latest messages as handled here (a cluster's reader keeps it).
    pub recent: crate::gateway::journal::Recent,
    /// Which node reported each remote voice state ((guild, user) → node), to clear a dead node's.
    pub(crate) voice_origin: Mutex<std::collections::HashMap<(Id, Id), String>>,
}

/// Voice participants the chat plane removed (kicked, banned, their channel or guild deleted): the
/// voice gateway ends their sessions with 4014. `None` fields match everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ejection {
    pub guild: Id,
    pub user: Option<Id>,
    pub channel: Option<Id>,
}

/// A login that ended (logout, password change, expiry): every connection identified with it,
/// chat or voice, must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub user: Id,
    /// The hash of the revoked bearer token.
    pub login: String,
}

/// How long presence changes are gathered before they go out together (and the housekeeping tick).
pub const PRESENCE_FLUSH: Duration = Duration::from_millis(100);

/// Revocations kept for a slow subscriber; past that it re-checks what it holds (`is_revoked`).
const REVOCATION_BACKLOG: usize = 1024;

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(store: Store, cfg: ChatConfig) -> App {
        App::with_broker(store, cfg, |hub| Arc::new(LocalBroker::new(hub)))
    }

    /// A chat plane whose events leave through the broker `make` builds on the hub (the cluster's).
    pub fn with_broker(store: Store, cfg: ChatConfig, make: impl FnOnce(Arc<Hub>) -> Arc<dyn Broker>) -> App {
        let hub = Arc::new(Hub::new(HubConfig {
            replay: cfg.replay_buffer,
            resume_window: cfg.resume_window(),
            positions: false,
        }));
        let broker = make(hub.clone());
        // Built before the broker (which may deliver to it), told afterwards how it numbers.
        hub.number_by_position(broker.ordered());
        let voice_secret = match &cfg.voice_token_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => crate::auth::new_token().into_bytes(),
        };
        App(Arc::new(Inner {
            store,
            ids: IdGen::new(cfg.node_id),
            login_by_account: Mutex::new(RateLimiter::new(cfg.login_account_limit(), 100_000)),
            login_by_ip: Mutex::new(RateLimiter::new(cfg.login_ip_limit(), 100_000)),
            posts: Mutex::new(RateLimiter::new(cfg.message_limit(), 100_000)),
            slow_mode: Mutex::new(Cooldowns::new(
                Duration::from_secs(crate::api::validate::MAX_SLOW_MODE_SECS as u64),
                100_000,
            )),
            passwords: Passwords::new(cfg.password_hash_concurrency, Duration::from_millis(cfg.password_queue_ms)),
            gateway_slots: Arc::new(Semaphore::new(cfg.max_gateway_connections)),
            blobs: Arc::new(crate::blobs::FsBlobStore::new(&cfg.attachments_dir)),
            uploads: Arc::new(Semaphore::new(cfg.max_concurrent_uploads.max(1))),
            hub,
            broker,
            cfg,
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            voice_tokens: VoiceTokens::new(&voice_secret),
            watch_tokens: crate::auth::WatchTokens::new(&voice_secret),
            voice_states: VoiceStates::default(),
            stream_states: Default::default(),
            rtmp_base: Mutex::default(),
            caches: crate::cache::Caches::default(),
            presence: Mutex::default(),
            logins: Mutex::default(),
            revocations: broadcast::Sender::new(REVOCATION_BACKLOG),
            ejections: broadcast::Sender::new(REVOCATION_BACKLOG),
            roster: Mutex::default(),
            voice_origin: Mutex::default(),
            recent: Default::default(),
            placer: std::sync::OnceLock::new(),
            journal: std::sync::OnceLock::new(),
        }))
    }

    /// Sets the signed URLs of a message's attachments (a day's validity, the same all hour).
    pub fn sign_attachments(&self, m: &mut crate::store::Message) {
        let now = crate::id::now_ms();
        for a in &mut m.attachments {
            let scope = format!("attachment:{}:{}", m.channel_id.0, a.id.0);
            let sig = self.watch_tokens.mint_scoped(&scope, 24, now);
            let base = format!("/api/attachments/{}/{}", m.channel_id, a.id);
            let name = crate::api::validate::url_component(&a.filename);
            a.url = format!("{base}/{name}?s={sig}");
            a.thumbnail_url = a.thumbnail.then(|| format!("{}&size=thumb", a.url));
        }
    }

    pub(crate) fn login_watch(&self) -> std::sync::MutexGuard<'_, LoginWatch> {
        self.logins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection's login so its expiry ends the connection; `false` when the login
    /// was revoked meanwhile (the caller must then end the connection it just set up).
    pub fn watch_login(&self, login: &str, user: Id, expires_at: i64) -> bool {
        let mut w = self.login_watch();
        w.watch(login, user, expires_at);
        !w.is_revoked(login)
    }

    pub fn is_revoked(&self, login: &str) -> bool {
        self.login_watch().is_revoked(login)
    }

    /// Ends every connection identified with `login`, on every node: gateway sessions close with
    /// 4004 (their users may go offline) and voice sessions are told through
    /// [`App::subscribe_revocations`]. Call it after the login is gone from the store.
    pub fn revoke_login(&self, login: &str, user: Id) {
        self.tell(Notice::Revoked(Revoked { user, login: login.to_string() }));
    }

    /// The RTMP ingest's base URL, for `POST …/stream-key` (set by the live engine at start).
    pub fn set_rtmp_base(&self, base: String) {
        *self.rtmp_base.lock().unwrap_or_else(|p| p.into_inner()) = Some(base);
    }

    pub fn rtmp_base(&self) -> Option<String> {
        self.rtmp_base.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A live channel's stream state: as last reported, else idle with its stored settings.
    pub async fn stream_state(
        &self,
        ch: &crate::store::Channel,
    ) -> Result<crate::streams::StreamState, crate::store::StoreError> {
        if let Some(s) = self.stream_states.get(ch.id) {
            return Ok(s);
        }
        let settings = self.store.stream_keys.stream_settings(ch.id).await?;
        let guild = ch.guild_id.ok_or(crate::store::StoreError::NotFound("guild"))?;
        let mut state = crate::streams::StreamState::idle(guild, ch.id);
        (state.title, state.public) = (settings.title, settings.public);
        self.stream_states.set(&state);
        Ok(state)
    }

    /// Records a live channel's stream state reported by the live engine and tells the guild
    /// (STREAM_UPDATE).
    pub fn update_stream(&self, state: crate::streams::StreamState) {
        self.stream_states.set(&state);
        self.publish(Topic::Guild(state.guild_id), "STREAM_UPDATE", &state);
    }

    /// Whether `user` is a member of `guild`, from the cache when it knows.
    pub async fn is_member(&self, guild: Id, user: Id) -> crate::store::Result<bool> {
        Ok(self.access(guild, user).await?.is_some())
    }

    /// What `user` may do in `guild` (`None`: not a member), from the cache when it knows.
    pub async fn access(&self, guild: Id, user: Id) -> crate::store::Result<Option<crate::perms::Access>> {
        if let Some(a) = self.caches.access(guild, user) {
            return Ok(Some(a));
        }
        let access = self.store.roles.access(guild, user).await?;
        if let Some(a) = access {
            self.caches.put_access(guild, user, a);
        }
        Ok(access)
    }

    /// The channel, from the cache when it knows.
    pub async fn channel(&self, id: Id) -> crate::store::Result<Option<crate::store::Channel>> {
        if let Some(c) = self.caches.channel(id) {
            return Ok(Some(c));
        }
        let c = self.store.channels.channel(id).await?;
        if let Some(c) = &c {
            self.caches.put_channel(c);
        }
        Ok(c)
    }

    /// Places voice rooms from now on (set once, by the cluster).
    pub fn set_placer(&self, placer: Arc<dyn crate::voice::VoicePlacer>) {
        let _ = self.placer.set(placer);
    }

    /// Keeps sessions resumable on other nodes from now on (set once, by the cluster).
    pub fn set_journal(&self, journal: Arc<dyn crate::gateway::journal::Journal>) {
        let _ = self.journal.set(journal);
    }

    /// The voice gateway serving `room`.
    pub async fn voice_endpoint(&self, room: Id) -> Result<String, String> {
        match self.placer.get() {
            Some(p) => p.endpoint(room).await,
            None => Ok("/voice".into()),
        }
    }

    /// Voice participants to remove from now on, for the voice gateway.
    pub fn subscribe_ejections(&self) -> broadcast::Receiver<Ejection> {
        self.ejections.subscribe()
    }

    /// Ends voice sessions (see [`Ejection`]), on every node.
    pub fn eject(&self, e: Ejection) {
        self.tell(Notice::Ejected(e));
    }

    /// After the store took `user` out of `guild` (they left, were kicked or banned): the guild
    /// hears GUILD_MEMBER_REMOVE, the user's sessions GUILD_DELETE and nothing more of it, and
    /// their voice sessions there end, all at once.
    pub fn member_removed(&self, guild: Id, user: Id) {
        self.forget(Forget::Member(guild, user));
        self.leave_topic(user, Topic::Guild(guild));
        self.leave_topic(user, Topic::Presence(guild));
        self.publish(Topic::Guild(guild), "GUILD_MEMBER_REMOVE", &json!({ "guild_id": guild, "user_id": user }));
        self.publish(Topic::User(user), "GUILD_DELETE", &json!({ "id": guild }));
        self.eject(Ejection { guild, user: Some(user), channel: None });
    }

    /// Revoked logins from now on, for the voice gateway.
    pub fn subscribe_revocations(&self) -> broadcast::Receiver<Revoked> {
        self.revocations.subscribe()
    }

    pub fn publish(&self, topic: Topic, name: &'static str, data: &impl serde::Serialize) {
        self.broker.publish(topic, Event::new(name, data));
    }

    /// Publishes an event of `channel`: to its guild, or to every recipient of a DM.
    pub async fn publish_in(
        &self,
        channel: &crate::store::Channel,
        name: &'static str,
        data: &impl serde::Serialize,
    ) -> crate::store::Result<()> {
        match channel.guild_id {
            Some(guild) => self.publish(Topic::Guild(guild), name, data),
            None => {
                let ev = Event::new(name, data);
                for user in self.store.dms.recipients(channel.id).await? {
                    self.broker.publish(Topic::User(user.id), ev.clone());
                }
            }
        }
        Ok(())
    }

    /// Tells the user's guilds about their status, at the next flush (within [`PRESENCE_FLUSH`]),
    /// coalesced with the other changes in the guild. Called on this node's changes: the other
    /// nodes hear of them, and a user still online on another node is not shown offline.
    pub fn publish_presence(&self, user: Id, status: Status, guilds: &[Id]) {
        let here = self.hub.status(user);
        self.broker.announce(&Notice::Presence { user, status: (here != Status::Offline).then_some(here) });
        if status == Status::Offline && self.status(user) != Status::Offline {
            return;
        }
        self.presence.lock().unwrap_or_else(|p| p.into_inner()).push(user, status, guilds);
    }

    /// Publishes the pending presence changes: per guild, one PRESENCE_UPDATE for one user, else
    /// one PRESENCE_UPDATE_BULK, to the guild's presence topic.
    pub fn flush_presence(&self) {
        let batch = self.presence.lock().unwrap_or_else(|p| p.into_inner()).drain();
        for (guild, changes) in batch {
            if let [(user, status)] = changes[..] {
                let d = json!({ "user_id": user, "guild_id": guild, "status": status });
                self.publish(Topic::Presence(guild), "PRESENCE_UPDATE", &d);
            } else {
                let presences: Vec<_> = changes.iter().map(|(u, s)| json!({ "user_id": u, "status": s })).collect();
                let d = json!({ "guild_id": guild, "presences": presences });
                self.publish(Topic::Presence(guild), "PRESENCE_UPDATE_BULK", &d);
            }
        }
    }

    /// Records a voice state reported by the voice gateway and tells the guild (VOICE_STATE_UPDATE).
    pub fn update_voice_state(&self, state: VoiceState) {
        self.voice_states.set(&state);
        self.publish(Topic::Guild(state.guild_id), "VOICE_STATE_UPDATE", &state);
    }

    /// Background upkeep until shutdown: ends gateway sessions past their resume window (their users
    /// go offline), ends connections whose login expired, and purges expired login sessions.
    pub async fn run_housekeeping(self) {
        let mut tick = tokio::time::interval(PRESENCE_FLUSH);
        let mut last_purge = Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.hub.expire(Instant::now());
            for gone in self.hub.take_offline() {
                self.publish_presence(gone.user, Status::Offline, &gone.guilds);
            }
            self.passwords.trim(Instant::now());
            let due = self.login_watch().due(crate::id::now_ms());
            for (login, user) in due {
                self.revoke_login(&login, user);
            }
            self.flush_presence();
            if last_purge.elapsed() > Duration::from_secs(3600) {
                last_purge = Instant::now();
                if let Err(e) = self.store.sessions.purge_expired(crate::id::now_ms()).await {
                    tracing::warn!(error = %e, "purging expired sessions failed");
                }
            }
        }
    }
}

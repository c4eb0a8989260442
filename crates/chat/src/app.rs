//! The shared state of the chat plane, handed to every route and gateway socket.

use crate::auth::{RateLimiter, VoiceTokens};
use crate::config::ChatConfig;
use crate::gateway::broker::{Broker, LocalBroker};
use crate::gateway::hub::{Hub, HubConfig, Topic};
use crate::gateway::protocol::{Event, Status};
use crate::id::{Id, IdGen};
use crate::store::Store;
use crate::voice::{VoiceState, VoiceStates};
use serde_json::json;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
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
    /// Fired on shutdown: gateway sockets send a close frame and end.
    pub shutdown: CancellationToken,
    /// Gateway socket tasks, awaited on shutdown.
    pub sockets: TaskTracker,
    pub gateway_slots: Arc<Semaphore>,
    pub next_conn: AtomicU64,
    pub voice_tokens: VoiceTokens,
    pub voice_states: VoiceStates,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(store: Store, cfg: ChatConfig) -> App {
        let hub = Arc::new(Hub::new(HubConfig { replay: cfg.replay_buffer, resume_window: cfg.resume_window() }));
        let broker: Arc<dyn Broker> = Arc::new(LocalBroker::new(hub.clone()));
        let voice_secret = match &cfg.voice_token_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => crate::auth::new_token().into_bytes(),
        };
        App(Arc::new(Inner {
            store,
            ids: IdGen::new(cfg.node_id),
            login_by_account: Mutex::new(RateLimiter::new(cfg.login_account_limit(), 100_000)),
            login_by_ip: Mutex::new(RateLimiter::new(cfg.login_ip_limit(), 100_000)),
            gateway_slots: Arc::new(Semaphore::new(cfg.max_gateway_connections)),
            hub,
            broker,
            cfg,
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            voice_tokens: VoiceTokens::new(&voice_secret),
            voice_states: VoiceStates::default(),
        }))
    }

    pub fn publish(&self, topic: Topic, name: &'static str, data: &impl serde::Serialize) {
        self.broker.publish(topic, Event::new(name, data));
    }

    /// Tells the user's guilds about their status.
    pub fn publish_presence(&self, user: Id, status: Status, guilds: &[Id]) {
        for g in guilds {
            self.publish(
                Topic::Guild(*g),
                "PRESENCE_UPDATE",
                &json!({ "user_id": user, "guild_id": g, "status": status }),
            );
        }
    }

    /// Records a voice state reported by the voice gateway and tells the guild (VOICE_STATE_UPDATE).
    pub fn update_voice_state(&self, state: VoiceState) {
        self.voice_states.set(&state);
        self.publish(Topic::Guild(state.guild_id), "VOICE_STATE_UPDATE", &state);
    }

    /// Background upkeep until shutdown: ends gateway sessions past their resume window (their users
    /// go offline) and purges expired login sessions.
    pub async fn run_housekeeping(self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut last_purge = Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for gone in self.hub.expire(Instant::now()) {
                self.publish_presence(gone.user, Status::Offline, &gone.guilds);
            }
            if last_purge.elapsed() > Duration::from_secs(3600) {
                last_purge = Instant::now();
                if let Err(e) = self.store.sessions.purge_expired(crate::id::now_ms()).await {
                    tracing::warn!(error = %e, "purging expired sessions failed");
                }
            }
        }
    }
}

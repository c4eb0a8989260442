//! Rooms and join tokens for an application that embeds confab (the C ABI in `crates/ffi`), with
//! no HTTP, accounts or guilds of its own to manage.
//!
//! A room is a voice channel of one "home" guild owned by a system user, both created on first use
//! through the store traits like any other guild, and found again on the next start with a
//! persistent store. Minting a token for a username makes sure that user exists (with a disabled
//! password: it cannot log in over HTTP) and is a member, then signs a [`VoiceGrant`] as
//! `POST /api/channels/{id}/voice` would.

use crate::server::Running;
use chat::app::App;
use chat::auth::VoiceGrant;
use chat::id::{Id, now_ms};
use chat::store::{Channel, ChannelKind, Guild, Invite, StoreError, User};
use signaling::Voice;
use tokio::sync::{OnceCell, broadcast};

pub use chat::store::VoiceMode;
pub use sfu::SfuStats;
pub use signaling::VoiceEvent;
pub use signaling::protocol::Participant;

/// The home guild's owner. `~` is not allowed in usernames, so nobody can sign up as it or mint
/// a token for it.
const OWNER: &str = "~confab-embedded";
/// A password hash that no password verifies (not a PHC string): the account cannot log in.
const NO_PASSWORD: &str = "!";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The home guild: its id and an invite that makes minted users members.
#[derive(Debug)]
struct Home {
    owner: Id,
    guild: Id,
    invite: String,
}

/// A room's own composite settings; `None` fields take the server's `[video]` ones.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomVideo {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
    pub bitrate_kbps: Option<u32>,
    pub max_tiles: Option<usize>,
}

/// Rooms, tokens, participants, stats and events of a [`Running`] server, for embedders.
pub struct Embedder {
    app: App,
    voice: Voice,
    mixers: std::sync::Arc<crate::media::McuMixers>,
    home: OnceCell<Home>,
}

impl Embedder {
    pub fn new(running: &Running) -> Embedder {
        Embedder {
            app: running.app.clone(),
            voice: running.voice.clone(),
            mixers: running.mixers.clone(),
            home: OnceCell::new(),
        }
    }

    /// Creates a voice room named `name` with media `mode`; returns its id (a channel id).
    pub async fn create_room(&self, name: &str, mode: VoiceMode) -> Result<Id, EmbedError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(EmbedError::InvalidArgument(
                "room name must be 1-100 characters, no control characters".into(),
            ));
        }
        let home = self.home().await?;
        let position = self.app.store.channels.channels(home.guild).await?.len() as i64;
        let channel = Channel {
            id: self.app.ids.next(),
            guild_id: Some(home.guild),
            name: name.to_string(),
            kind: ChannelKind::Voice,
            position,
            created_at: now_ms(),
            voice_mode: Some(mode),
            slow_mode_secs: 0,
            topic: String::new(),
        };
        self.app.store.channels.create_channel(&channel).await?;
        Ok(channel.id)
    }

    /// Gives `room` its own composite size, frame rate, bitrate or tile count (any left out take
    /// the server's `[video]` settings). Applies from the room's next compositor: set it before
    /// people join, or it takes effect once the room's video has stopped and starts again.
    pub async fn set_room_video(&self, room: Id, video: RoomVideo) -> Result<(), EmbedError> {
        self.room(room).await?;
        let d = self.mixers.defaults().clone();
        let cfg = mcu::CompositorConfig {
            width: video.width.unwrap_or(d.width),
            height: video.height.unwrap_or(d.height),
            fps: video.fps.unwrap_or(d.fps),
            bitrate_kbps: video.bitrate_kbps.unwrap_or(d.bitrate_kbps),
            max_tiles: video.max_tiles.unwrap_or(d.max_tiles),
            ..d
        };
        let room_id = signaling::rooms::room_id(room);
        self.mixers.set_room_video(room_id, Some(cfg)).map_err(|e| EmbedError::InvalidArgument(e.to_string()))
    }

    /// Removes every participant of `room` (their sockets close with 4014) and refuses tokens and
    /// joins for it from now on, including tokens minted before. Lasts for this server's lifetime.
    pub async fn close_room(&self, room: Id) -> Result<(), EmbedError> {
        self.room(room).await?;
        self.voice.close_room(room);
        Ok(())
    }

    /// A voice token for `username` (created if new) to join `room`, valid for the chat config's
    /// `voice_token_ttl_secs`.
    pub async fn mint_token(&self, username: &str, room: Id) -> Result<String, EmbedError> {
        if chat::api::validate::username(username).is_err() {
            return Err(EmbedError::InvalidArgument(format!(
                "username {username:?} must be 2-32 characters of letters, digits, '_', '.', '-'"
            )));
        }
        let channel = self.room(room).await?;
        let home = self.home().await?;
        let user = self.user(username).await?;
        self.app.store.members.join_by_invite(&home.invite, user.id, now_ms()).await?;
        let grant = VoiceGrant {
            user: user.id,
            username: user.username,
            guild: home.guild,
            room,
            moderator: user.id == home.owner,
            mode: channel.voice_mode.unwrap_or_default(),
            expires_at: now_ms() + (self.app.cfg.voice_token_ttl_secs as i64).saturating_mul(1000),
            login: None,
        };
        Ok(self.app.voice_tokens.mint(&grant))
    }

    /// Who is in `room`, in join order.
    pub async fn participants(&self, room: Id) -> Result<Vec<Participant>, EmbedError> {
        self.room(room).await?;
        Ok(self.voice.participants(room))
    }

    /// The media engine's counters per peer and per room (what `/voice/stats` serves).
    pub async fn stats(&self) -> SfuStats {
        self.voice.sfu.stats().await
    }

    /// Joins, leaves and speaking changes in every room, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<VoiceEvent> {
        self.voice.subscribe()
    }

    /// An open room of the home guild, else `NotFound`.
    async fn room(&self, room: Id) -> Result<Channel, EmbedError> {
        let home = self.home().await?;
        let not_found = || EmbedError::NotFound(format!("no room {room}"));
        let channel = self.app.store.channels.channel(room).await?.ok_or_else(not_found)?;
        if channel.guild_id != Some(home.guild) || channel.kind != ChannelKind::Voice {
            return Err(not_found());
        }
        if self.voice.is_room_closed(room) {
            return Err(EmbedError::NotFound(format!("room {room} is closed")));
        }
        Ok(channel)
    }

    async fn home(&self) -> Result<&Home, EmbedError> {
        self.home.get_or_try_init(|| self.find_or_create_home()).await
    }

    async fn find_or_create_home(&self) -> Result<Home, EmbedError> {
        let owner = self.user(OWNER).await?;
        let guilds = self.app.store.guilds.guilds_of(owner.id).await?;
        let guild = match guilds.into_iter().find(|g| g.owner_id == owner.id) {
            Some(g) => g.id,
            None => {
                let g = Guild {
                    id: self.app.ids.next(),
                    name: "embedded".into(),
                    owner_id: owner.id,
                    created_at: now_ms(),
                };
                self.app.store.guilds.create_guild(&g, &[]).await?;
                g.id
            }
        };
        // A fresh unlimited invite per process: cheap, and no secret to keep across restarts.
        let invite = Invite {
            code: chat::auth::new_token(),
            guild_id: guild,
            creator_id: owner.id,
            created_at: now_ms(),
            expires_at: None,
            max_uses: None,
            uses: 0,
        };
        self.app.store.guilds.create_invite(&invite).await?;
        Ok(Home { owner: owner.id, guild, invite: invite.code })
    }

    /// The user named `username`, created (unable to log in) if there is none.
    async fn user(&self, username: &str) -> Result<User, EmbedError> {
        if let Some((user, _)) = self.app.store.users.credentials(username).await? {
            return Ok(user);
        }
        let user = User::new(self.app.ids.next(), username.to_string(), now_ms());
        match self.app.store.users.create_user(&user, NO_PASSWORD).await {
            Ok(()) => Ok(user),
            // Created concurrently (another call or process): take theirs.
            Err(StoreError::Conflict(_)) => match self.app.store.users.credentials(username).await? {
                Some((user, _)) => Ok(user),
                None => Err(StoreError::NotFound("user").into()),
            },
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_owner_name_is_not_a_valid_username() {
        assert!(chat::api::validate::username(OWNER).is_err());
        assert!(!chat::auth::verify_password("", NO_PASSWORD));
    }
}

//! Storage: one trait per aggregate, one SQL implementation for SQLite and Postgres.
//!
//! The traits are the only way the rest of the crate touches data, so a backend is a set of trait
//! objects ([`Store`]). [`sql::SqlStore`] implements all of them over sqlx's `Any` driver: the queries
//! are written once in the common subset of both dialects (`$N` placeholders, `BIGINT`, `RETURNING`,
//! `ON CONFLICT`), the schema has one migration set per dialect, and the store test suite runs the
//! same tests against both.

mod model;
pub mod sql;

pub use model::*;

use crate::id::Id;
use async_trait::async_trait;
use std::sync::Arc;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was broken (the name of what collided).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// What the operation needs does not exist (or no longer applies, e.g. an expired invite).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("unsupported database url {0:?} (expected sqlite:… or postgres://…)")]
    BadUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The user is banned from the guild they tried to join.
    #[error("banned from this guild")]
    Banned,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Conflict("username")` when the name is taken (case-insensitively).
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<()>;
    async fn user(&self, id: Id) -> Result<Option<User>>;
    /// The user and their password hash, for login.
    async fn credentials(&self, username: &str) -> Result<Option<(User, String)>>;
    /// Replaces the password hash; `false` when there is no such user.
    async fn set_password(&self, user: Id, password_hash: &str) -> Result<bool>;
    /// Sets what others see of `user` (display name, avatar hash); `false` when there is none.
    async fn set_profile(&self, user: Id, display_name: Option<&str>, avatar: Option<&str>) -> Result<bool>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// The session with this token hash, if it exists and has not expired at `now_ms`.
    async fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> Result<bool>;
    /// Removes every session of `user`; returns their token hashes.
    async fn delete_sessions_of(&self, user: Id) -> Result<Vec<String>>;
    /// Removes sessions expired at `now_ms`; returns how many.
    async fn purge_expired(&self, now_ms: i64) -> Result<u64>;
}

#[async_trait]
pub trait GuildStore: Send + Sync {
    /// Creates the guild, makes its owner a member and adds `channels`, atomically.
    async fn create_guild(&self, guild: &Guild, channels: &[Channel]) -> Result<()>;
    async fn guild(&self, id: Id) -> Result<Option<Guild>>;
    async fn guilds_of(&self, user: Id) -> Result<Vec<Guild>>;
    async fn create_invite(&self, invite: &Invite) -> Result<()>;
    /// A guild's invites, newest first (expired and used-up ones included: the list shows them).
    async fn invites(&self, guild: Id) -> Result<Vec<Invite>>;
    async fn invite(&self, code: &str) -> Result<Option<Invite>>;
    /// `false` when there was no such invite.
    async fn delete_invite(&self, code: &str) -> Result<bool>;
    /// `false` when there is no such guild.
    async fn rename_guild(&self, guild: Id, name: &str) -> Result<bool>;
    /// Deletes the guild and everything in it (channels, messages, roles, members); `false` when
    /// there was none.
    async fn delete_guild(&self, guild: Id) -> Result<bool>;
}

#[async_trait]
pub trait RoleStore: Send + Sync {
    /// A guild's roles, `@everyone` included, most senior first.
    async fn roles(&self, guild: Id) -> Result<Vec<Role>>;
    async fn create_role(&self, role: &Role) -> Result<()>;
    /// Replaces name, permissions and position; `false` when the role is not the guild's.
    async fn update_role(&self, role: &Role) -> Result<bool>;
    /// `false` when the role is not the guild's (or is `@everyone`, which cannot go).
    async fn delete_role(&self, guild: Id, role: Id) -> Result<bool>;
    /// Gives a member a role; `NotFound("member")` when they are not one, `false` when they had it.
    async fn add_member_role(&self, guild: Id, user: Id, role: Id) -> Result<bool>;
    async fn remove_member_role(&self, guild: Id, user: Id, role: Id) -> Result<bool>;
    /// What `user` may do in `guild`; `None` when they are not a member.
    async fn access(&self, guild: Id, user: Id) -> Result<Option<crate::perms::Access>>;
}

#[async_trait]
pub trait ModerationStore: Send + Sync {
    /// Bans `ban.user_id`: records the ban and ends their membership, atomically. `true` when
    /// they were a member.
    async fn ban(&self, ban: &Ban) -> Result<bool>;
    /// `false` when they were not banned.
    async fn unban(&self, guild: Id, user: Id) -> Result<bool>;
    async fn bans(&self, guild: Id) -> Result<Vec<Ban>>;
    async fn is_banned(&self, guild: Id, user: Id) -> Result<bool>;
    /// Times a member out until `until` (unix ms; `None` ends it); `false` when not a member.
    async fn set_timeout(&self, guild: Id, user: Id, until: Option<i64>) -> Result<bool>;
    async fn log(&self, entry: &AuditEntry) -> Result<()>;
    /// At most `limit` entries of a guild's audit log older than `before`, newest first.
    async fn audit_log(&self, guild: Id, before: Option<Id>, limit: u32) -> Result<Vec<AuditEntry>>;
}

#[async_trait]
pub trait MemberStore: Send + Sync {
    async fn is_member(&self, guild: Id, user: Id) -> Result<bool>;
    async fn members(&self, guild: Id) -> Result<Vec<Member>>;
    /// At most `limit` members with a user id above `after`, by user id: a page of a large guild.
    async fn members_page(&self, guild: Id, after: Option<Id>, limit: u32) -> Result<Vec<Member>>;
    async fn member_count(&self, guild: Id) -> Result<u64>;
    /// Takes `user` out of `guild`; `false` when they were not in it.
    async fn remove_member(&self, guild: Id, user: Id) -> Result<bool>;
    /// Whether `a` and `b` are members of some guild together (who may open a DM with whom).
    async fn share_a_guild(&self, a: Id, b: Id) -> Result<bool>;
    /// Redeems an invite: adds `user` to its guild and counts the use, atomically. `NotFound("invite")`
    /// when unknown, expired or used up; `Banned` when `user` is banned from its guild. Returns the
    /// guild and whether the user is newly a member.
    async fn join_by_invite(&self, code: &str, user: Id, now_ms: i64) -> Result<(Guild, bool)>;
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    async fn create_channel(&self, channel: &Channel) -> Result<()>;
    async fn channel(&self, id: Id) -> Result<Option<Channel>>;
    async fn channels(&self, guild: Id) -> Result<Vec<Channel>>;
    /// Sets a voice channel's room mode; `false` when no such voice channel exists.
    async fn set_voice_mode(&self, channel: Id, mode: VoiceMode) -> Result<bool>;
    /// Renames a channel and sets its topic; `false` when no such channel exists.
    async fn set_name_and_topic(&self, channel: Id, name: &str, topic: &str) -> Result<bool>;
    /// Sets a text channel's slow mode (seconds); `false` when no such text channel exists.
    async fn set_slow_mode(&self, channel: Id, secs: i64) -> Result<bool>;
    /// Deletes a guild channel and its messages; `false` when there was none.
    async fn delete_channel(&self, channel: Id) -> Result<bool>;
}

#[async_trait]
pub trait DmStore: Send + Sync {
    /// The 1:1 DM of `a` and `b`: the existing one, else `channel` created for them. `true` when new.
    async fn open_dm(&self, channel: &Channel, a: Id, b: Id) -> Result<(Channel, bool)>;
    /// Creates `channel` as a group DM of `recipients`.
    async fn create_group_dm(&self, channel: &Channel, recipients: &[Id]) -> Result<()>;
    /// Who is in a DM (empty when it is not one).
    async fn recipients(&self, channel: Id) -> Result<Vec<User>>;
    /// `user`'s DMs with their read state (as seen by `user`), latest activity first.
    async fn dms_of(&self, user: Id) -> Result<Vec<Dm>>;
}

#[async_trait]
pub trait BlockStore: Send + Sync {
    /// `user` blocks `blocked`; `false` when already blocked.
    async fn block(&self, user: Id, blocked: Id, now_ms: i64) -> Result<bool>;
    /// `false` when it was not blocked.
    async fn unblock(&self, user: Id, blocked: Id) -> Result<bool>;
    /// The users `user` blocked.
    async fn blocked_by(&self, user: Id) -> Result<Vec<User>>;
    /// Whether either of `a` and `b` blocked the other.
    async fn either_blocked(&self, a: Id, b: Id) -> Result<bool>;
}

#[async_trait]
pub trait StreamKeyStore: Send + Sync {
    /// A live channel's stream settings (defaults when never set).
    async fn stream_settings(&self, channel: Id) -> Result<StreamSettings>;
    async fn set_stream_settings(&self, channel: Id, settings: &StreamSettings) -> Result<()>;
    /// Sets (replacing any) the key of a live channel, as its hash.
    async fn set_stream_key(&self, channel: Id, key_hash: &str, now_ms: i64) -> Result<()>;
    /// The live channel a key (by hash) publishes to.
    async fn channel_for_stream_key(&self, key_hash: &str) -> Result<Option<Id>>;
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores the message and its mentions in one transaction; returns once committed.
    async fn create_message(&self, message: &Message) -> Result<()>;
    async fn message(&self, id: Id) -> Result<Option<Message>>;
    /// Replaces the content (and mentions); `None` when the message does not exist.
    async fn edit_message(&self, message: &Message) -> Result<bool>;
    async fn delete_message(&self, id: Id) -> Result<bool>;
    async fn history(&self, channel: Id, page: Page) -> Result<Vec<Message>>;
    /// An attachment and the channel it was sent in.
    async fn attachment(&self, id: Id) -> Result<Option<(Id, Attachment)>>;
    /// `user` reacts to `message` (of `channel`) with `emoji`; `false` when they already had.
    async fn add_reaction(&self, channel: Id, message: Id, user: Id, emoji: &str, now_ms: i64) -> Result<bool>;
    /// `false` when there was no such reaction.
    async fn remove_reaction(&self, message: Id, user: Id, emoji: &str) -> Result<bool>;
}

#[async_trait]
pub trait ReadStateStore: Send + Sync {
    /// Moves the read marker forward to `message` (never backwards).
    async fn ack(&self, user: Id, channel: Id, message: Id) -> Result<()>;
    /// Read states with unread and mention counts for every text channel of `guild`.
    async fn read_states(&self, user: Id, guild: Id) -> Result<Vec<ReadState>>;
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    async fn create_report(&self, report: &Report) -> Result<()>;
    async fn report(&self, id: Id) -> Result<Option<Report>>;
    /// Reports of a guild, newest first, optionally only those with `status`.
    async fn reports(&self, guild: Id, status: Option<ReportStatus>) -> Result<Vec<Report>>;
    /// Closes an open report; `false` when it was not open.
    async fn resolve_report(&self, id: Id, status: ReportStatus, by: Id, at_ms: i64) -> Result<bool>;
}

/// The store as the rest of the crate sees it: one handle per aggregate.
#[derive(Clone)]
pub struct Store {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub guilds: Arc<dyn GuildStore>,
    pub members: Arc<dyn MemberStore>,
    pub channels: Arc<dyn ChannelStore>,
    pub dms: Arc<dyn DmStore>,
    pub blocks: Arc<dyn BlockStore>,
    pub stream_keys: Arc<dyn StreamKeyStore>,
    pub messages: Arc<dyn MessageStore>,
    pub read_states: Arc<dyn ReadStateStore>,
    pub reports: Arc<dyn ReportStore>,
    pub roles: Arc<dyn RoleStore>,
    pub moderation: Arc<dyn ModerationStore>,
    backend: &'static str,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    /// `sqlite:path` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store> {
        let sql = Arc::new(sql::SqlStore::open(url).await?);
        Ok(Store::from_sql(sql))
    }

    pub fn from_sql(sql: Arc<sql::SqlStore>) -> Store {
        Store {
            backend: sql.backend(),
            users: sql.clone(),
            sessions: sql.clone(),
            guilds: sql.clone(),
            members: sql.clone(),
            channels: sql.clone(),
            dms: sql.clone(),
            blocks: sql.clone(),
            stream_keys: sql.clone(),
            messages: sql.clone(),
            read_states: sql.clone(),
            reports: sql.clone(),
            roles: sql.clone(),
            moderation: sql,
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

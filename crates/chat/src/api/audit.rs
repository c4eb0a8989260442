//! The audit log's writer: every moderation and management route records what it did here.

use super::error::ApiResult;
use crate::app::App;
use crate::id::{Id, now_ms};
use crate::store::AuditEntry;

/// Audit log actions (stable strings: clients match on them).
pub mod action {
    pub const GUILD_UPDATE: &str = "guild_update";
    pub const CHANNEL_CREATE: &str = "channel_create";
    pub const CHANNEL_UPDATE: &str = "channel_update";
    pub const CHANNEL_DELETE: &str = "channel_delete";
    pub const ROLE_CREATE: &str = "role_create";
    pub const ROLE_UPDATE: &str = "role_update";
    pub const ROLE_DELETE: &str = "role_delete";
    pub const MEMBER_ROLE_UPDATE: &str = "member_role_update";
    pub const MEMBER_KICK: &str = "member_kick";
    pub const MEMBER_TIMEOUT: &str = "member_timeout";
    pub const MEMBER_BAN_ADD: &str = "member_ban_add";
    pub const MEMBER_BAN_REMOVE: &str = "member_ban_remove";
    pub const MESSAGE_DELETE: &str = "message_delete";
    pub const INVITE_DELETE: &str = "invite_delete";
    pub const REPORT_RESOLVE: &str = "report_resolve";
}

/// The longest reason kept.
pub const MAX_REASON_CHARS: usize = 512;

pub async fn record(app: &App, guild: Id, actor: Id, action: &str, target: Option<Id>, reason: &str) -> ApiResult<()> {
    let reason: String = reason.trim().chars().take(MAX_REASON_CHARS).collect();
    let entry = AuditEntry {
        id: app.ids.next(),
        guild_id: guild,
        actor_id: actor,
        action: action.to_string(),
        target_id: target,
        reason,
        created_at: now_ms(),
    };
    app.store.moderation.log(&entry).await?;
    Ok(())
}

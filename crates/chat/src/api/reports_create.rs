//! `POST /api/channels/{channel_id}/messages/{message_id}/reports` `{reason}` → 201 report (any
//! member); REPORT_CREATE to the guild owner.

use super::access::member_message;
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use super::validate;
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::{Id, now_ms};
use crate::store::{Report, ReportStatus, ReportSubject};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub reason: String,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path((channel, message)): Path<(Id, Id)>,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Report>)> {
    let (ch, m) = member_message(&app, channel, message, caller.user).await?;
    let reason = validate::text("reason", &body.reason, 500)?;
    // Reports go to a guild's moderators; a DM has none (block the user instead).
    let guild_id = ch.guild_id.ok_or_else(|| {
        ApiError::invalid("messages in direct messages cannot be reported to a guild: block the user instead")
    })?;
    let guild =
        app.store.guilds.guild(guild_id).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_GUILD, "guild"))?;
    let report = Report {
        id: app.ids.next(),
        subject: ReportSubject::Message,
        guild_id,
        channel_id: channel,
        message_id: message,
        message_author: m.author_id,
        message_content: m.content,
        reporter_id: caller.user,
        reason: reason.to_string(),
        status: ReportStatus::Open,
        created_at: now_ms(),
        resolved_by: None,
        resolved_at: None,
    };
    file(&app, report, guild.owner_id).await
}

/// Stores a new report and tells the guild's moderators (REPORT_CREATE): 201 with it.
pub(super) async fn file(app: &App, report: Report, owner: Id) -> ApiResult<(StatusCode, axum::Json<Report>)> {
    app.store.reports.create_report(&report).await?;
    for user in moderators(app, report.guild_id, owner).await? {
        app.publish(Topic::User(user), "REPORT_CREATE", &report);
    }
    Ok((StatusCode::CREATED, axum::Json(report)))
}

/// Who sees a guild's reports: its owner and the members whose roles grant MANAGE_MESSAGES (or
/// ADMINISTRATOR). Reports are rare, so reading the member list each time is fine.
async fn moderators(app: &App, guild: Id, owner: Id) -> ApiResult<Vec<Id>> {
    let grants = |p: crate::perms::Permissions| {
        p.contains(crate::perms::Permissions::MANAGE_MESSAGES) || p.contains(crate::perms::Permissions::ADMINISTRATOR)
    };
    let roles: Vec<_> = app.store.roles.roles(guild).await?.into_iter().filter(|r| grants(r.permissions)).collect();
    let mut users = vec![owner];
    if roles.is_empty() {
        return Ok(users);
    }
    let everyone = roles.iter().any(|r| r.id == guild);
    for m in app.store.members.members(guild).await? {
        if m.user_id != owner && (everyone || m.roles.iter().any(|id| roles.iter().any(|r| r.id == *id))) {
            users.push(m.user_id);
        }
    }
    Ok(users)
}

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

/// Stores a new report and tells the guild's owner (REPORT_CREATE): 201 with it.
pub(super) async fn file(app: &App, report: Report, owner: Id) -> ApiResult<(StatusCode, axum::Json<Report>)> {
    app.store.reports.create_report(&report).await?;
    app.publish(Topic::User(owner), "REPORT_CREATE", &report);
    Ok((StatusCode::CREATED, axum::Json(report)))
}

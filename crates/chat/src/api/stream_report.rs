//! `POST /api/channels/{channel_id}/stream/reports` `{reason}` → 201 report (anyone signed in who
//! may watch: a member, or anyone when the stream is public): the stream itself reported, not a
//! message. It lands in the guild owner's report queue (`GET /api/guilds/{id}/reports`, subject
//! `stream`) with REPORT_CREATE.

use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use super::validate;
use crate::app::App;
use crate::id::{Id, now_ms};
use crate::store::{ChannelKind, Report, ReportStatus, ReportSubject};
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
    Path(channel): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Report>)> {
    let ch = app.channel(channel).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"))?;
    let guild_id = match (ch.kind, ch.guild_id) {
        (ChannelKind::Live, Some(guild)) => guild,
        _ => return Err(ApiError::invalid("not a live channel")),
    };
    let state = app.stream_state(&ch).await?;
    if !state.public && !app.is_member(guild_id, caller.user).await? {
        return Err(ApiError::not_member());
    }
    let reason = validate::text("reason", &body.reason, 500)?;
    let guild =
        app.store.guilds.guild(guild_id).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_GUILD, "guild"))?;
    let report = Report {
        id: app.ids.next(),
        subject: ReportSubject::Stream,
        guild_id,
        channel_id: channel,
        message_id: Id(0),
        message_author: guild.owner_id,
        message_content: if state.title.is_empty() { ch.name.clone() } else { state.title.clone() },
        reporter_id: caller.user,
        reason: reason.to_string(),
        status: ReportStatus::Open,
        created_at: now_ms(),
        resolved_by: None,
        resolved_at: None,
    };
    super::reports_create::file(&app, report, guild.owner_id).await
}

//! `POST /api/reports/{report_id}/resolve` `{action, reason?, timeout_secs?}` → the resolved
//! report (MANAGE_MESSAGES, plus what the action needs). `action`: `dismiss`; `delete` (the
//! message); `timeout` (delete it and time its author out for `timeout_secs`, default an hour:
//! MODERATE_MEMBERS); `kick` (delete and kick: KICK_MEMBERS); `ban` (delete and ban, which ends
//! every session of theirs in the guild: BAN_MEMBERS). A stream report can only be dismissed.
//! The action is in the audit log.

use super::access::permitted;
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use super::messages_delete::delete_and_announce;
use crate::app::App;
use crate::id::{Id, now_ms};
use crate::perms::Permissions;
use crate::store::{Report, ReportStatus, ReportSubject};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Delete,
    Dismiss,
    Timeout,
    Kick,
    Ban,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub action: Action,
    #[serde(default)]
    pub reason: String,
    pub timeout_secs: Option<u32>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(report): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Report>> {
    let unknown = || ApiError::not_found(code::UNKNOWN_REPORT, "report");
    let r = app.store.reports.report(report).await?.ok_or_else(unknown)?;
    let guild = r.guild_id;
    let (_, me) = permitted(&app, guild, caller.user, Permissions::MANAGE_MESSAGES).await?;
    let needed = match body.action {
        Action::Timeout => Permissions::MODERATE_MEMBERS,
        Action::Kick => Permissions::KICK_MEMBERS,
        Action::Ban => Permissions::BAN_MEMBERS,
        Action::Delete | Action::Dismiss => Permissions::NONE,
    };
    if !me.has(needed) {
        return Err(ApiError::forbidden(format!("you need the {} permission for this", needed.name())));
    }
    if body.action != Action::Dismiss && r.subject == ReportSubject::Stream {
        return Err(ApiError::invalid(
            "a stream report has no message to act on: dismiss it (rotate the key to stop the stream)",
        ));
    }
    let reason = if body.reason.trim().is_empty() { format!("report: {}", r.reason) } else { body.reason.clone() };
    // The member first: a refusal (they outrank the caller) leaves the report open.
    let author = r.message_author;
    match body.action {
        Action::Timeout => {
            let secs = i64::from(body.timeout_secs.unwrap_or(3600));
            let until = now_ms() + secs.saturating_mul(1000);
            super::members_update::time_out(&app, guild, caller.user, author, Some(until), &reason).await?
        }
        Action::Kick => super::members_kick::kick(&app, guild, caller.user, author, &reason).await?,
        Action::Ban => super::bans::ban(&app, guild, caller.user, author, &reason).await?,
        Action::Delete | Action::Dismiss => {}
    }
    let status = if body.action == Action::Dismiss { ReportStatus::Dismissed } else { ReportStatus::Deleted };
    if !app.store.reports.resolve_report(report, status, caller.user, now_ms()).await? {
        return Err(ApiError::new(StatusCode::CONFLICT, code::INVALID_FORM_BODY, "report already resolved"));
    }
    if status == ReportStatus::Deleted
        && let Some(ch) = app.channel(r.channel_id).await?
    {
        delete_and_announce(&app, &ch, r.message_id).await?;
    }
    let what = format!("{:?}: {}", body.action, r.reason).to_lowercase();
    record(&app, guild, caller.user, action::REPORT_RESOLVE, Some(report), &what).await?;
    Ok(axum::Json(app.store.reports.report(report).await?.ok_or_else(unknown)?))
}

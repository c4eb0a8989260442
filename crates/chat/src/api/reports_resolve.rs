//! `POST /api/reports/{report_id}/resolve` `{action: "delete"|"dismiss"}` → the resolved report
//! (guild owner only). `delete` removes the reported message (a stream report can only be
//! dismissed).

use super::access::owned_guild;
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use super::messages_delete::delete_and_announce;
use crate::app::App;
use crate::id::{Id, now_ms};
use crate::store::{Report, ReportStatus};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Delete,
    Dismiss,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub action: Action,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(report): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Report>> {
    let unknown = || ApiError::not_found(code::UNKNOWN_REPORT, "report");
    let r = app.store.reports.report(report).await?.ok_or_else(unknown)?;
    owned_guild(&app, r.guild_id, caller.user).await?;
    let status = match body.action {
        Action::Delete => ReportStatus::Deleted,
        Action::Dismiss => ReportStatus::Dismissed,
    };
    if status == ReportStatus::Deleted && r.subject == crate::store::ReportSubject::Stream {
        return Err(ApiError::invalid(
            "a stream report has no message to delete: dismiss it (rotate the key to stop the stream)",
        ));
    }
    if !app.store.reports.resolve_report(report, status, caller.user, now_ms()).await? {
        return Err(ApiError::new(StatusCode::CONFLICT, code::INVALID_FORM_BODY, "report already resolved"));
    }
    if status == ReportStatus::Deleted
        && let Some(ch) = app.channel(r.channel_id).await?
    {
        delete_and_announce(&app, &ch, r.message_id).await?;
    }
    Ok(axum::Json(app.store.reports.report(report).await?.ok_or_else(unknown)?))
}

//! `GET /api/guilds/{guild_id}/reports?status=open|deleted|dismissed` → the moderation queue,
//! newest first (MANAGE_MESSAGES).

use super::access::permitted;
use super::error::ApiResult;
use super::extract::{Caller, Path, Query};
use crate::app::App;
use crate::id::Id;
use crate::perms::Permissions;
use crate::store::{Report, ReportStatus};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub status: Option<ReportStatus>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(guild): Path<Id>,
    Query(p): Query<Params>,
) -> ApiResult<Json<Vec<Report>>> {
    permitted(&app, guild, caller.user, Permissions::MANAGE_MESSAGES).await?;
    Ok(Json(app.store.reports.reports(guild, p.status).await?))
}

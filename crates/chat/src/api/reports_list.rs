//! `GET /api/guilds/{guild_id}/reports?status=open|deleted|dismissed` → the moderation queue,
//! newest first (owner only).

use super::access::owned_guild;
use super::error::ApiResult;
use super::extract::{Caller, Path, Query};
use crate::app::App;
use crate::id::Id;
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
    owned_guild(&app, guild, caller.user).await?;
    Ok(Json(app.store.reports.reports(guild, p.status).await?))
}

//! `GET /api/guilds/{guild_id}/audit-log?before=&limit=` → entries newest first (VIEW_AUDIT_LOG;
//! `limit` 1–100, default 50; `before` an entry id, for the next page).

use super::access::permitted;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path, Query};
use crate::app::App;
use crate::id::Id;
use crate::perms::Permissions;
use crate::store::AuditEntry;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub before: Option<Id>,
    pub limit: Option<u32>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(guild): Path<Id>,
    Query(p): Query<Params>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    permitted(&app, guild, caller.user, Permissions::VIEW_AUDIT_LOG).await?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1-100"));
    }
    Ok(Json(app.store.moderation.audit_log(guild, p.before, limit).await?))
}

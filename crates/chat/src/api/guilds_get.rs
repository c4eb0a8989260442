//! `GET /api/guilds/{guild_id}` → the guild, its roles, and what the caller may do in it:
//! `permissions` (their effective bits, all of them for the owner or an administrator) and `rank`
//! (their highest role's position) — members only.

use super::access::member_guild;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<Json<Value>> {
    let g = member_guild(&app, guild, caller.user).await?;
    let mut v = json!(g);
    add_standing(&app, &mut v, guild, caller.user).await?;
    Ok(Json(v))
}

/// Adds `roles`, `permissions` and `rank` (see above) to `v`: for this route, READY and
/// GUILD_CREATE.
pub async fn add_standing(app: &App, v: &mut Value, guild: Id, user: Id) -> ApiResult<()> {
    let me = app.access(guild, user).await?.ok_or_else(ApiError::not_member)?;
    v["roles"] = json!(app.store.roles.roles(guild).await?);
    v["permissions"] = json!(me.effective());
    v["rank"] = json!(me.rank.min(crate::perms::MAX_SAFE_RANK));
    Ok(())
}

//! `PATCH /api/guilds/{guild_id}` `{name}` → the guild (MANAGE_GUILD). GUILD_UPDATE to the guild.

use super::access::permitted;
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use super::validate;
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::Id;
use crate::perms::Permissions;
use crate::store::Guild;
use axum::extract::State;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub name: String,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(guild): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Guild>> {
    let (mut g, _) = permitted(&app, guild, caller.user, Permissions::MANAGE_GUILD).await?;
    let name = validate::text("name", &body.name, 100)?;
    if !app.store.guilds.rename_guild(guild, &name).await? {
        return Err(ApiError::not_found(code::UNKNOWN_GUILD, "guild"));
    }
    g.name = name.into_owned();
    record(&app, guild, caller.user, action::GUILD_UPDATE, None, &g.name).await?;
    app.publish(Topic::Guild(guild), "GUILD_UPDATE", &g);
    Ok(axum::Json(g))
}

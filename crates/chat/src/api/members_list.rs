//! `GET /api/guilds/{guild_id}/members?after=&limit=` → members with their presence. Without
//! `after`, in join order, at most `limit` (1–1000, default 1000); with `after` (a user id), the
//! next page by user id, for large guilds.

use super::access::member_guild;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path, Query};
use crate::app::App;
use crate::id::Id;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub after: Option<Id>,
    pub limit: Option<u32>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(guild): Path<Id>,
    Query(p): Query<Params>,
) -> ApiResult<Json<Vec<Value>>> {
    member_guild(&app, guild, caller.user).await?;
    let limit = p.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1-1000"));
    }
    let members = match p.after {
        None => {
            let mut all = app.store.members.members(guild).await?;
            all.truncate(limit as usize);
            all
        }
        Some(after) => app.store.members.members_page(guild, Some(after), limit).await?,
    };
    Ok(Json(members.iter().map(|m| member_json(&app, m)).collect()))
}

pub fn member_json(app: &App, m: &crate::store::Member) -> Value {
    let timeout = m.timeout_until.filter(|t| *t > crate::id::now_ms());
    json!({
        "user_id": m.user_id, "username": m.username, "display_name": m.display_name, "avatar": m.avatar,
        "joined_at": m.joined_at, "status": app.status(m.user_id),
        "roles": m.roles, "timeout_until": timeout,
    })
}

/// One member, as the list shows them (`None`: not a member).
pub async fn member(app: &App, guild: crate::id::Id, user: crate::id::Id) -> crate::store::Result<Option<Value>> {
    let page = app.store.members.members_page(guild, Some(crate::id::Id(user.0.saturating_sub(1))), 1).await?;
    Ok(page.iter().find(|m| m.user_id == user).map(|m| member_json(app, m)))
}

/// Tells the guild a member's roles or time-out changed (GUILD_MEMBER_UPDATE, the whole member).
pub async fn announce_update(app: &App, guild: crate::id::Id, user: crate::id::Id) -> crate::store::Result<()> {
    if let Some(mut m) = member(app, guild, user).await? {
        m["guild_id"] = json!(guild);
        app.publish(crate::gateway::hub::Topic::Guild(guild), "GUILD_MEMBER_UPDATE", &m);
    }
    Ok(())
}

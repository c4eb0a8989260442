//! `POST /api/guilds/{guild_id}/invites` `{max_uses?, max_age_secs?}` → 201 invite (CREATE_INVITE, which
//! `@everyone` has by default);
//! `{}` makes an invite without limits.

use super::access::permitted;
use super::error::ApiResult;
use super::extract::{Caller, Json, Path};
use crate::app::App;
use crate::auth::new_token;
use crate::id::{Id, now_ms};
use crate::perms::Permissions;
use crate::store::Invite;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub max_uses: Option<u32>,
    pub max_age_secs: Option<u32>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(guild): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Invite>)> {
    permitted(&app, guild, caller.user, Permissions::CREATE_INVITE).await?;
    let now = now_ms();
    let invite = Invite {
        code: new_token()[..10].to_string(),
        guild_id: guild,
        creator_id: caller.user,
        created_at: now,
        expires_at: body.max_age_secs.filter(|s| *s > 0).map(|s| now + i64::from(s) * 1000),
        max_uses: body.max_uses.filter(|n| *n > 0).map(i64::from),
        uses: 0,
    };
    app.store.guilds.create_invite(&invite).await?;
    Ok((StatusCode::CREATED, axum::Json(invite)))
}

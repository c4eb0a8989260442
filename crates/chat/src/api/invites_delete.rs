//! `DELETE /api/invites/{code}` → 204: revokes an invite (its creator, or MANAGE_GUILD).

use super::access::permitted;
use super::audit::{action, record};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::perms::Permissions;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn handler(State(app): State<App>, caller: Caller, Path(code): Path<String>) -> ApiResult<StatusCode> {
    let unknown = || ApiError::not_found(code::UNKNOWN_INVITE, "invite");
    let invite = app.store.guilds.invite(&code).await?.ok_or_else(unknown)?;
    if invite.creator_id != caller.user {
        permitted(&app, invite.guild_id, caller.user, Permissions::MANAGE_GUILD).await?;
    } else if !app.is_member(invite.guild_id, caller.user).await? {
        return Err(ApiError::not_member());
    }
    if !app.store.guilds.delete_invite(&code).await? {
        return Err(unknown());
    }
    record(&app, invite.guild_id, caller.user, action::INVITE_DELETE, None, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

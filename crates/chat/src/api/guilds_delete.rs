//! `DELETE /api/guilds/{guild_id}` → 204 (the owner only): the guild and everything in it go.
//! Every member's sessions get GUILD_DELETE and no more of it, voice calls in it end, and its
//! attachments are removed from the blob store.

use super::access::member_guild;
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Path};
use crate::app::{App, Ejection};
use crate::gateway::broker::Forget;
use crate::gateway::hub::Topic;
use crate::id::Id;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

pub async fn handler(State(app): State<App>, caller: Caller, Path(guild): Path<Id>) -> ApiResult<StatusCode> {
    let g = member_guild(&app, guild, caller.user).await?;
    if g.owner_id != caller.user {
        return Err(ApiError::forbidden("only the server's owner may delete it"));
    }
    let members = app.store.members.members(guild).await?;
    let channels = app.store.channels.channels(guild).await?;
    if !app.store.guilds.delete_guild(guild).await? {
        return Err(ApiError::not_found(code::UNKNOWN_GUILD, "guild"));
    }
    app.forget(Forget::Guild(guild));
    app.eject(Ejection { guild, user: None, channel: None });
    for m in &members {
        app.leave_topic(m.user_id, Topic::Guild(guild));
        app.leave_topic(m.user_id, Topic::Presence(guild));
        app.publish(Topic::User(m.user_id), "GUILD_DELETE", &json!({ "id": guild }));
    }
    for c in &channels {
        app.forget(Forget::Channel(c.id));
        super::channels_delete::remove_blobs(&app, c.id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

//! Reactions: `PUT /api/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me` → 204
//! (MESSAGE_REACTION_ADD to the channel, once per user and emoji), `DELETE` there → 204
//! (MESSAGE_REACTION_REMOVE when there was one). Unicode emoji only; they count against the
//! poster's message pace, so reacting cannot flood a channel either.

use super::access::member_message;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path};
use super::validate;
use crate::app::App;
use crate::id::{Id, now_ms};
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use std::time::Instant;

pub async fn put(
    State(app): State<App>,
    caller: Caller,
    Path((channel, message, emoji)): Path<(Id, Id, String)>,
) -> ApiResult<StatusCode> {
    let emoji = validate::emoji(&emoji)?;
    let (ch, _) = member_message(&app, channel, message, caller.user).await?;
    if let Some(guild) = ch.guild_id {
        super::access::not_timed_out(&app, guild, caller.user).await?;
    }
    let paced = app.posts.lock().unwrap_or_else(|p| p.into_inner()).check(&caller.user, Instant::now());
    paced.map_err(|wait| ApiError::rate_limited(wait).with_message("you are reacting too fast"))?;
    if app.store.messages.add_reaction(channel, message, caller.user, emoji, now_ms()).await? {
        let d = event(ch.guild_id, channel, message, caller.user, emoji);
        app.publish_in(&ch, "MESSAGE_REACTION_ADD", &d).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete(
    State(app): State<App>,
    caller: Caller,
    Path((channel, message, emoji)): Path<(Id, Id, String)>,
) -> ApiResult<StatusCode> {
    let emoji = validate::emoji(&emoji)?;
    let (ch, _) = member_message(&app, channel, message, caller.user).await?;
    if app.store.messages.remove_reaction(message, caller.user, emoji).await? {
        let d = event(ch.guild_id, channel, message, caller.user, emoji);
        app.publish_in(&ch, "MESSAGE_REACTION_REMOVE", &d).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn event(guild: Option<Id>, channel: Id, message: Id, user: Id, emoji: &str) -> serde_json::Value {
    let mut d = json!({ "channel_id": channel, "message_id": message, "user_id": user, "emoji": emoji });
    if let Some(g) = guild {
        d["guild_id"] = json!(g);
    }
    d
}

//! `POST /api/channels/{channel_id}/messages` `{content}` → 201 message, sent only after the
//! message is committed; then MESSAGE_CREATE goes to the guild. Mentions (`<@id>`) of members are
//! recorded for notifications.

use super::access::member_channel;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use super::validate;
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::Id;
use crate::store::{ChannelKind, Message};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub content: String,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(channel): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Message>)> {
    let ch = member_channel(&app, channel, caller.user).await?;
    if ch.kind != ChannelKind::Text {
        return Err(ApiError::invalid("messages can only be sent to text channels"));
    }
    let content = validate::text("content", &body.content, validate::MAX_MESSAGE_CHARS)?;
    let message = Message {
        id: app.ids.next(),
        channel_id: channel,
        author_id: caller.user,
        content: content.to_string(),
        mentions: member_mentions(&app, ch.guild_id, content).await?,
        edited_at: None,
    };
    app.store.messages.create_message(&message).await?;
    app.publish(Topic::Guild(ch.guild_id), "MESSAGE_CREATE", &with_guild(&message, ch.guild_id));
    Ok((StatusCode::CREATED, axum::Json(message)))
}

/// The `<@id>` mentions in `content` that name members of the guild.
pub async fn member_mentions(app: &App, guild: Id, content: &str) -> ApiResult<Vec<Id>> {
    let mut out = Vec::new();
    for user in validate::mentions(content) {
        if app.store.members.is_member(guild, user).await? {
            out.push(user);
        }
    }
    Ok(out)
}

/// A message as dispatched: with its guild id, as Discord does.
pub fn with_guild(m: &Message, guild: Id) -> serde_json::Value {
    let mut v = json!(m);
    v["guild_id"] = json!(guild);
    v
}

//! `PATCH /api/channels/{channel_id}/messages/{message_id}` `{content}` → the edited message
//! (author only); MESSAGE_UPDATE to the guild.

use super::access::member_message;
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use super::messages_create::{member_mentions, with_guild};
use super::validate;
use crate::app::App;
use crate::id::{Id, now_ms};
use crate::store::Message;
use axum::extract::State;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub content: String,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path((channel, message)): Path<(Id, Id)>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Message>> {
    let (ch, mut m) = member_message(&app, channel, message, caller.user).await?;
    if m.author_id != caller.user {
        return Err(ApiError::forbidden("only the author may edit a message"));
    }
    let content = validate::text("content", &body.content, validate::MAX_MESSAGE_CHARS)?;
    m.mentions = member_mentions(&app, &ch, &content).await?;
    m.content = content.into_owned();
    m.edited_at = Some(now_ms());
    if !app.store.messages.edit_message(&m).await? {
        return Err(ApiError::not_found(code::UNKNOWN_MESSAGE, "message"));
    }
    app.sign_attachments(&mut m);
    app.publish_in(&ch, "MESSAGE_UPDATE", &with_guild(&m, ch.guild_id)).await?;
    Ok(axum::Json(m))
}

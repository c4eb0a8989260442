//! `PATCH /api/channels/{channel_id}` `{voice_mode}` → the channel (guild owner only). The new mode
//! applies to rooms started after the change; CHANNEL_UPDATE goes to the guild.

use super::access::{member_channel, owned_guild};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::Id;
use crate::store::{Channel, ChannelKind, VoiceMode};
use axum::extract::State;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub voice_mode: VoiceMode,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(channel): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Channel>> {
    let mut ch = member_channel(&app, channel, caller.user).await?;
    owned_guild(&app, ch.guild_id, caller.user).await?;
    if ch.kind != ChannelKind::Voice {
        return Err(ApiError::invalid("voice_mode applies to voice channels only"));
    }
    if !app.store.channels.set_voice_mode(channel, body.voice_mode).await? {
        return Err(ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"));
    }
    ch.voice_mode = Some(body.voice_mode);
    app.publish(Topic::Guild(ch.guild_id), "CHANNEL_UPDATE", &ch);
    Ok(axum::Json(ch))
}

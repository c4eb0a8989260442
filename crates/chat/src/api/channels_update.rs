//! `PATCH /api/channels/{channel_id}` `{name?, topic?, voice_mode?, slow_mode_secs?}` → the
//! channel (MANAGE_CHANNELS). `name` 1–100 characters, `topic` up to 1024 (empty: none);
//! `voice_mode` applies to voice channels, from the next room started; `slow_mode_secs` (0–21600,
//! 0 off) to text channels. CHANNEL_UPDATE goes to the guild.

use super::access::{guild_channel, permitted};
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json, Path};
use super::validate;
use crate::app::App;
use crate::gateway::broker::Forget;
use crate::gateway::hub::Topic;
use crate::id::Id;
use crate::perms::Permissions;
use crate::store::{Channel, ChannelKind, VoiceMode};
use axum::extract::State;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub voice_mode: Option<VoiceMode>,
    pub slow_mode_secs: Option<i64>,
}

/// A topic's length, at most.
const MAX_TOPIC_CHARS: usize = 1024;

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(channel): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<Channel>> {
    let (mut ch, guild) = guild_channel(&app, channel, caller.user).await?;
    permitted(&app, guild, caller.user, Permissions::MANAGE_CHANNELS).await?;
    if body.name.is_none() && body.topic.is_none() && body.voice_mode.is_none() && body.slow_mode_secs.is_none() {
        return Err(ApiError::invalid("nothing to change: give name, topic, voice_mode or slow_mode_secs"));
    }
    if body.name.is_some() || body.topic.is_some() {
        let name = match &body.name {
            Some(n) => validate::text("name", n, 100)?.into_owned(),
            None => ch.name.clone(),
        };
        let topic = match body.topic.as_deref().map(str::trim) {
            Some("") => String::new(),
            Some(t) => validate::text("topic", t, MAX_TOPIC_CHARS)?.into_owned(),
            None => ch.topic.clone(),
        };
        if !app.store.channels.set_name_and_topic(channel, &name, &topic).await? {
            return Err(ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"));
        }
        (ch.name, ch.topic) = (name, topic);
    }
    if let Some(mode) = body.voice_mode {
        if ch.kind != ChannelKind::Voice {
            return Err(ApiError::invalid("voice_mode applies to voice channels only"));
        }
        if !app.store.channels.set_voice_mode(channel, mode).await? {
            return Err(ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"));
        }
        ch.voice_mode = Some(mode);
    }
    if let Some(secs) = body.slow_mode_secs {
        if !ch.kind.has_messages() {
            return Err(ApiError::invalid("slow_mode_secs applies to text and live channels only"));
        }
        validate::slow_mode(secs)?;
        if !app.store.channels.set_slow_mode(channel, secs).await? {
            return Err(ApiError::not_found(code::UNKNOWN_CHANNEL, "channel"));
        }
        ch.slow_mode_secs = secs;
    }
    app.forget(Forget::Channel(ch.id));
    super::audit::record(&app, guild, caller.user, super::audit::action::CHANNEL_UPDATE, Some(ch.id), &ch.name).await?;
    app.publish(Topic::Guild(guild), "CHANNEL_UPDATE", &ch);
    Ok(axum::Json(ch))
}

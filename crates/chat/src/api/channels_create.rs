//! `POST /api/guilds/{guild_id}/channels` `{name, kind: "text"|"voice"|"live", voice_mode?,
//! slow_mode_secs?}` → 201 channel (MANAGE_CHANNELS). `voice_mode` (`hybrid` default, `sfu`, `mcu`)
//! applies to voice channels only, `slow_mode_secs` (0–21600) to channels with messages (text, and
//! a live stream's chat). A live channel's stream key comes from `POST …/stream-key`.

use super::access::permitted;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use super::validate;
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::{Id, now_ms};
use crate::perms::Permissions;
use crate::store::{Channel, ChannelKind, VoiceMode};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub name: String,
    pub kind: ChannelKind,
    pub voice_mode: Option<VoiceMode>,
    pub slow_mode_secs: Option<i64>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(guild): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Channel>)> {
    permitted(&app, guild, caller.user, Permissions::MANAGE_CHANNELS).await?;
    let name = validate::text("name", &body.name, 100)?;
    let voice_mode = match (body.kind, body.voice_mode) {
        (ChannelKind::Dm, _) => {
            return Err(ApiError::invalid("a guild has no DM channels: open one with POST /api/users/@me/channels"));
        }
        (ChannelKind::Voice, mode) => Some(mode.unwrap_or_default()),
        (ChannelKind::Text | ChannelKind::Live, None) => None,
        (ChannelKind::Text | ChannelKind::Live, Some(_)) => {
            return Err(ApiError::invalid("voice_mode applies to voice channels only"));
        }
    };
    let slow_mode_secs = match (body.kind, body.slow_mode_secs) {
        (_, None) => 0,
        (ChannelKind::Text | ChannelKind::Live, Some(secs)) => {
            validate::slow_mode(secs)?;
            secs
        }
        (ChannelKind::Voice | ChannelKind::Dm, Some(_)) => {
            return Err(ApiError::invalid("slow_mode_secs applies to text and live channels only"));
        }
    };
    let position = app.store.channels.channels(guild).await?.iter().map(|c| c.position + 1).max().unwrap_or(0);
    let channel = Channel {
        id: app.ids.next(),
        guild_id: Some(guild),
        name: name.into(),
        kind: body.kind,
        position,
        created_at: now_ms(),
        voice_mode,
        slow_mode_secs,
        topic: String::new(),
    };
    app.store.channels.create_channel(&channel).await?;
    super::audit::record(
        &app,
        guild,
        caller.user,
        super::audit::action::CHANNEL_CREATE,
        Some(channel.id),
        &channel.name,
    )
    .await?;
    app.publish(Topic::Guild(guild), "CHANNEL_CREATE", &channel);
    Ok((StatusCode::CREATED, axum::Json(channel)))
}

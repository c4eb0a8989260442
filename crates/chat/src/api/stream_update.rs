//! `PATCH /api/channels/{channel_id}/stream` `{title?, public?}` → the stream state (MANAGE_GUILD):
//! the watch page's title (up to 140 characters, empty clears it), and whether anyone may watch,
//! signed in or not. STREAM_UPDATE tells the guild.

use super::access::{guild_channel, permitted};
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use super::validate;
use crate::app::App;
use crate::id::Id;
use crate::perms::Permissions;
use crate::store::{ChannelKind, StreamSettings};
use crate::streams::StreamState;
use axum::extract::State;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub title: Option<String>,
    pub public: Option<bool>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(channel): Path<Id>,
    Json(body): Json<Body>,
) -> ApiResult<axum::Json<StreamState>> {
    let (ch, guild) = guild_channel(&app, channel, caller.user).await?;
    permitted(&app, guild, caller.user, Permissions::MANAGE_GUILD).await?;
    if ch.kind != ChannelKind::Live {
        return Err(ApiError::invalid("not a live channel"));
    }
    let mut state = app.stream_state(&ch).await?;
    if let Some(title) = &body.title {
        state.title = if title.trim().is_empty() { String::new() } else { validate::text("title", title, 140)?.into() };
    }
    if let Some(public) = body.public {
        state.public = public;
    }
    let settings = StreamSettings { public: state.public, title: state.title.clone() };
    app.store.stream_keys.set_stream_settings(channel, &settings).await?;
    // Read again: a report from the live engine may have landed meanwhile; settings win.
    let mut now = app.stream_states.get(channel).unwrap_or(state);
    (now.title, now.public) = (settings.title, settings.public);
    app.update_stream(now.clone());
    Ok(axum::Json(now))
}

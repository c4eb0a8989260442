//! `POST /api/channels/{channel_id}/voice` → `{token, endpoint, room_id, guild_id, expires_at}`: a
//! member asks to join a voice channel; the voice gateway at `endpoint` accepts the token. The
//! token names the login that asked for it, so the voice session ends when that login does. In a
//! cluster `endpoint` is the voice gateway of the media node the room is placed on (503 when no
//! media node is alive).

use super::access::guild_channel;
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::auth::VoiceGrant;
use crate::id::{Id, now_ms};
use crate::store::ChannelKind;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn handler(State(app): State<App>, caller: Caller, Path(channel): Path<Id>) -> ApiResult<axum::Json<Value>> {
    let (ch, guild_id) = guild_channel(&app, channel, caller.user).await?;
    if ch.kind != ChannelKind::Voice {
        return Err(ApiError::invalid("not a voice channel"));
    }
    let guild =
        app.store.guilds.guild(guild_id).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_GUILD, "guild"))?;
    super::access::not_timed_out(&app, guild_id, caller.user).await?;
    let access = app.access(guild_id, caller.user).await?.ok_or_else(ApiError::not_member)?;
    let user =
        app.store.users.user(caller.user).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_USER, "user"))?;
    let expires_at = now_ms() + (app.cfg.voice_token_ttl_secs as i64).saturating_mul(1000);
    let grant = VoiceGrant {
        user: user.id,
        username: user.username,
        guild: guild.id,
        room: ch.id,
        moderator: access.has(crate::perms::Permissions::MUTE_MEMBERS),
        mode: ch.voice_mode.unwrap_or_default(),
        expires_at,
        login: Some(caller.token_hash.clone()),
    };
    let endpoint = app.voice_endpoint(ch.id).await.map_err(|e| {
        tracing::warn!(error = %e, room = %ch.id, "placing a voice room failed");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code::UNAVAILABLE,
            "no voice server available, try again",
        )
    })?;
    let token = app.voice_tokens.mint(&grant);
    // The voice session must end with the login: its expiry is watched from now on.
    app.watch_login(&caller.token_hash, caller.user, caller.expires_at);
    Ok(axum::Json(
        json!({ "token": token, "endpoint": endpoint, "room_id": ch.id, "guild_id": guild.id, "expires_at": expires_at }),
    ))
}

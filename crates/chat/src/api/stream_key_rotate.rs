//! `POST /api/channels/{channel_id}/stream-key` → `{stream_key, rtmp_url}` (MANAGE_GUILD, live
//! channels only): a new stream key, shown this once; only its hash is stored, and the previous
//! key stops working (a publisher already live goes on until it stops). `rtmp_url` is where OBS or
//! ffmpeg publishes (`null` when this server takes no RTMP).

use super::access::{guild_channel, permitted};
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path};
use crate::app::App;
use crate::auth::{hash_token, new_token};
use crate::id::{Id, now_ms};
use crate::perms::Permissions;
use crate::store::ChannelKind;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn handler(State(app): State<App>, caller: Caller, Path(channel): Path<Id>) -> ApiResult<axum::Json<Value>> {
    let (ch, guild) = guild_channel(&app, channel, caller.user).await?;
    permitted(&app, guild, caller.user, Permissions::MANAGE_GUILD).await?;
    if ch.kind != ChannelKind::Live {
        return Err(ApiError::invalid("stream keys belong to live channels"));
    }
    let key = format!("live_{}", new_token());
    app.store.stream_keys.set_stream_key(channel, &hash_token(&key), now_ms()).await?;
    let rtmp_url = app.rtmp_base().map(|base| format!("{base}/{key}"));
    Ok(axum::Json(json!({ "stream_key": key, "rtmp_url": rtmp_url })))
}

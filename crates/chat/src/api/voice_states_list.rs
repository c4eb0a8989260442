//! `GET /api/guilds/{guild_id}/voice-states` → who is in which voice channel of the guild.

use super::access::member_guild;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use crate::voice::VoiceState;
use axum::Json;
use axum::extract::State;

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(guild): Path<Id>,
) -> ApiResult<Json<Vec<VoiceState>>> {
    member_guild(&app, guild, caller.user).await?;
    Ok(Json(app.voice_states.of_guild(guild)))
}

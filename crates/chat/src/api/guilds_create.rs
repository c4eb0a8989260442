//! `POST /api/guilds` `{name}` → 201 guild with a `general` text and a `General` voice channel.

use super::error::ApiResult;
use super::extract::{Caller, Json};
use super::validate;
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::gateway::protocol::Event;
use crate::id::now_ms;
use crate::store::{Channel, ChannelKind, Guild, VoiceMode};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub name: String,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let name = validate::text("name", &body.name, 100)?;
    let now = now_ms();
    let guild = Guild { id: app.ids.next(), name: name.to_string(), owner_id: caller.user, created_at: now };
    let channel = |name: &str, kind, position| Channel {
        id: app.ids.next(),
        guild_id: Some(guild.id),
        name: name.into(),
        kind,
        position,
        created_at: now,
        voice_mode: (kind == ChannelKind::Voice).then_some(VoiceMode::default()),
        slow_mode_secs: 0,
        topic: String::new(),
    };
    let channels = vec![channel("general", ChannelKind::Text, 0), channel("General", ChannelKind::Voice, 1)];
    app.store.guilds.create_guild(&guild, &channels).await?;
    let mut full = json!({ "guild": guild, "channels": channels });
    super::guilds_get::add_standing(&app, &mut full, guild.id, caller.user).await?;
    app.join_topic(caller.user, Topic::Guild(guild.id), Some(Event::new("GUILD_CREATE", &full)));
    app.join_topic(caller.user, Topic::Presence(guild.id), None);
    Ok((StatusCode::CREATED, axum::Json(full)))
}

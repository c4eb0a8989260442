//! `POST /api/invites/{code}` → the guild joined. The guild hears GUILD_MEMBER_ADD and the new
//! member's sessions get GUILD_CREATE and start receiving the guild's events.

use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::gateway::protocol::Event;
use crate::id::now_ms;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn handler(State(app): State<App>, caller: Caller, Path(code): Path<String>) -> ApiResult<axum::Json<Value>> {
    let (guild, joined) = app.store.members.join_by_invite(&code, caller.user, now_ms()).await?;
    let channels = app.store.channels.channels(guild.id).await?;
    let mut full = json!({ "guild": guild, "channels": channels });
    super::guilds_get::add_standing(&app, &mut full, guild.id, caller.user).await?;
    if joined {
        let username = app.store.users.user(caller.user).await?.map(|u| u.username).unwrap_or_default();
        app.publish(
            Topic::Guild(guild.id),
            "GUILD_MEMBER_ADD",
            &json!({ "guild_id": guild.id, "user_id": caller.user, "username": username, "status": app.status(caller.user) }),
        );
        app.join_topic(caller.user, Topic::Guild(guild.id), Some(Event::new("GUILD_CREATE", &full)));
        // Presence of a small guild flows to everyone; a large one's only on request (op 8).
        if app.store.members.member_count(guild.id).await? as usize <= app.cfg.large_guild_threshold {
            app.join_topic(caller.user, Topic::Presence(guild.id), None);
        }
    }
    Ok(axum::Json(full))
}

//! `POST /api/users/@me/channels` `{recipients: [user ids], name?}` → a DM: with one recipient the
//! pair's 1:1 DM (200 when it exists, 201 when made), with 2 to 9 a new group DM (201, up to 10
//! people with the caller). Everyone named must share a guild with the caller and neither side may
//! have blocked the other (403). A new DM goes to each recipient as CHANNEL_CREATE.

use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json};
use super::validate;
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::id::{Id, now_ms};
use crate::store::{Channel, ChannelKind, Dm};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

/// A group DM holds at most this many people, its creator included.
pub const MAX_DM_PEOPLE: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub recipients: Vec<Id>,
    #[serde(default)]
    pub name: Option<String>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Json(body): Json<Body>,
) -> ApiResult<(StatusCode, axum::Json<Dm>)> {
    let mut others: Vec<Id> = body.recipients.iter().copied().filter(|u| *u != caller.user).collect();
    others.sort();
    others.dedup();
    if others.is_empty() || others.len() >= MAX_DM_PEOPLE {
        let message = format!("recipients: 1 to {} other users", MAX_DM_PEOPLE - 1);
        return Err(ApiError::invalid(message));
    }
    for &other in &others {
        if app.store.users.user(other).await?.is_none() {
            return Err(ApiError::not_found(code::UNKNOWN_USER, "user"));
        }
        if !app.store.members.share_a_guild(caller.user, other).await? {
            return Err(ApiError::forbidden("you can only message people you share a server with"));
        }
        if app.store.blocks.either_blocked(caller.user, other).await? {
            return Err(ApiError::forbidden("you cannot send messages to this user"));
        }
    }
    let name = match &body.name {
        Some(n) if others.len() > 1 => validate::text("name", n, 100)?.into_owned(),
        Some(_) => return Err(ApiError::invalid("only a group DM has a name")),
        None => String::new(),
    };
    let channel = Channel {
        id: app.ids.next(),
        guild_id: None,
        name,
        kind: ChannelKind::Dm,
        position: 0,
        created_at: now_ms(),
        voice_mode: None,
        slow_mode_secs: 0,
        topic: String::new(),
    };
    let (channel, created) = if let [other] = others[..] {
        app.store.dms.open_dm(&channel, caller.user, other).await?
    } else {
        let mut people = others.clone();
        people.push(caller.user);
        app.store.dms.create_group_dm(&channel, &people).await?;
        (channel, true)
    };
    let recipients = app.store.dms.recipients(channel.id).await?;
    let dm = Dm { channel, recipients, last_message_id: None, unread_count: 0, mention_count: 0 };
    if !created {
        // An existing 1:1 DM: its read state as the caller sees it.
        let mine = app.store.dms.dms_of(caller.user).await?.into_iter().find(|d| d.channel.id == dm.channel.id);
        return Ok((StatusCode::OK, axum::Json(mine.unwrap_or(dm))));
    }
    for u in &dm.recipients {
        app.publish(Topic::User(u.id), "CHANNEL_CREATE", &dm);
    }
    Ok((StatusCode::CREATED, axum::Json(dm)))
}

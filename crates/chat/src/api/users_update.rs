//! `PATCH /api/users/@me` `{display_name}` → the caller's user: sets the name others see instead
//! of the username (1–32 characters; `null` or empty clears it). USER_UPDATE goes to the caller's
//! sessions, to every guild they are in, and to the people they have DMs with.

use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Json};
use super::validate;
use crate::app::App;
use crate::gateway::hub::Topic;
use crate::store::User;
use axum::extract::State;
use serde::Deserialize;

/// A display name's length, at most.
pub const MAX_DISPLAY_NAME: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub display_name: Option<String>,
}

pub async fn handler(State(app): State<App>, caller: Caller, Json(body): Json<Body>) -> ApiResult<axum::Json<User>> {
    let mut me =
        app.store.users.user(caller.user).await?.ok_or_else(|| ApiError::not_found(code::UNKNOWN_USER, "user"))?;
    me.display_name = match body.display_name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => Some(validate::text("display_name", name, MAX_DISPLAY_NAME)?.into_owned()),
    };
    if !app.store.users.set_profile(me.id, me.display_name.as_deref(), me.avatar.as_deref()).await? {
        return Err(ApiError::not_found(code::UNKNOWN_USER, "user"));
    }
    announce(&app, &me).await?;
    Ok(axum::Json(me))
}

/// Tells the user's sessions, their guilds and their DM partners what they look like now
/// (USER_UPDATE; someone in both hears it twice, which applies the same change twice).
pub async fn announce(app: &App, user: &User) -> ApiResult<()> {
    app.publish(Topic::User(user.id), "USER_UPDATE", user);
    for g in app.store.guilds.guilds_of(user.id).await? {
        app.publish(Topic::Guild(g.id), "USER_UPDATE", user);
    }
    let mut partners: Vec<crate::id::Id> = app
        .store
        .dms
        .dms_of(user.id)
        .await?
        .iter()
        .flat_map(|d| d.recipients.iter().map(|r| r.id))
        .filter(|id| *id != user.id)
        .collect();
    partners.sort_unstable();
    partners.dedup();
    for p in partners {
        app.publish(Topic::User(p), "USER_UPDATE", user);
    }
    Ok(())
}

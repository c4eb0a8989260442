//! `GET /api/channels/{channel_id}/messages?before=&after=&limit=` → newest first. `limit` is 1–100
//! (default 50); `before` and `after` are exclusive message-id cursors, at most one of them.

use super::access::member_channel;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Path, Query};
use crate::app::App;
use crate::id::Id;
use crate::store::{Message, Page};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub before: Option<Id>,
    pub after: Option<Id>,
    pub limit: Option<u32>,
}

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(channel): Path<Id>,
    Query(p): Query<Params>,
) -> ApiResult<Json<Vec<Message>>> {
    member_channel(&app, channel, caller.user).await?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1-100"));
    }
    let page = match (p.before, p.after) {
        (None, None) => Page::Latest { limit },
        (Some(id), None) => Page::Before { id, limit },
        (None, Some(id)) => Page::After { id, limit },
        (Some(_), Some(_)) => return Err(ApiError::invalid("use before or after, not both")),
    };
    let mut page = app.store.messages.history(channel, page).await?;
    page.iter_mut().for_each(|m| app.sign_attachments(m));
    Ok(Json(page))
}

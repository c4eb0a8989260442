//! `POST /api/channels/{channel_id}/messages/{message_id}/ack` → 204; the read marker moves forward.

use super::access::member_message;
use super::error::ApiResult;
use super::extract::{Caller, Path};
use crate::app::App;
use crate::id::Id;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path((channel, message)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    member_message(&app, channel, message, caller.user).await?;
    app.store.read_states.ack(caller.user, channel, message).await?;
    Ok(StatusCode::NO_CONTENT)
}

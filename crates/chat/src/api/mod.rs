//! The REST API under `/api`, one route per file. Errors are `{code, message}` with the right
//! status (see [`error::code`]); the OpenAPI description is served at `/api/openapi.json`.

pub mod access;
pub mod audit;
pub mod error;
pub mod extract;
pub mod validate;

mod attachments_get;
mod audit_log;
mod auth_login;
mod auth_logout;
mod auth_logout_all;
mod auth_password;
mod auth_signup;
mod avatar;
mod avatars_get;
mod bans;
mod blocks;
mod channels_create;
mod channels_delete;
mod channels_list;
mod channels_update;
mod dms_list;
mod dms_open;
mod guilds_create;
mod guilds_delete;
pub mod guilds_get;
mod guilds_leave;
mod guilds_list;
mod guilds_update;
mod health;
mod invites_create;
mod invites_delete;
mod invites_join;
mod invites_list;
mod member_roles;
mod members_kick;
pub mod members_list;
mod members_update;
mod messages_ack;
mod messages_create;
mod messages_delete;
mod messages_edit;
mod messages_list;
mod openapi;
mod reactions;
mod read_states_list;
mod reports_create;
mod reports_list;
mod reports_resolve;
mod roles_create;
mod roles_list;
mod roles_update;
mod stream_get;
mod stream_key_rotate;
mod stream_report;
mod stream_update;
mod typing;
mod upload;
mod users_me;
mod users_update;
mod voice_join;
mod voice_states_list;

use crate::app::App;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use error::{ApiError, code};

/// Every `/api` route.
pub fn router(app: &App) -> Router<App> {
    // A message with its files: ten of the largest, and room for the form around them.
    let upload_limit = usize::try_from(app.cfg.max_attachment_bytes.saturating_mul(upload::MAX_FILES as u64))
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    Router::new()
        .route("/api/health", get(health::handler))
        .route("/api/openapi.json", get(openapi::handler))
        .route("/api/auth/signup", post(auth_signup::handler))
        .route("/api/auth/login", post(auth_login::handler))
        .route("/api/auth/logout", post(auth_logout::handler))
        .route("/api/auth/logout-all", post(auth_logout_all::handler))
        .route("/api/auth/password", post(auth_password::handler))
        .route("/api/users/@me", get(users_me::handler).patch(users_update::handler))
        .route(
            "/api/users/@me/avatar",
            put(avatar::put).delete(avatar::delete).layer(DefaultBodyLimit::max(avatar::MAX_AVATAR_BYTES)),
        )
        .route("/api/avatars/{user_id}/{file}", get(avatars_get::handler))
        .route("/api/users/@me/channels", get(dms_list::handler).post(dms_open::handler))
        .route("/api/users/@me/blocks", get(blocks::list))
        .route("/api/users/@me/guilds/{guild_id}", delete(guilds_leave::handler))
        .route("/api/users/@me/blocks/{user_id}", put(blocks::put).delete(blocks::delete))
        .route("/api/guilds", post(guilds_create::handler).get(guilds_list::handler))
        .route(
            "/api/guilds/{guild_id}",
            get(guilds_get::handler).patch(guilds_update::handler).delete(guilds_delete::handler),
        )
        .route("/api/guilds/{guild_id}/channels", get(channels_list::handler).post(channels_create::handler))
        .route("/api/guilds/{guild_id}/members", get(members_list::handler))
        .route("/api/guilds/{guild_id}/members/{user_id}", patch(members_update::handler).delete(members_kick::handler))
        .route(
            "/api/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
            put(member_roles::put).delete(member_roles::delete),
        )
        .route("/api/guilds/{guild_id}/roles", get(roles_list::handler).post(roles_create::handler))
        .route("/api/guilds/{guild_id}/roles/{role_id}", patch(roles_update::patch).delete(roles_update::delete))
        .route("/api/guilds/{guild_id}/bans", get(bans::list))
        .route("/api/guilds/{guild_id}/bans/{user_id}", put(bans::put).delete(bans::delete))
        .route("/api/guilds/{guild_id}/audit-log", get(audit_log::handler))
        .route("/api/guilds/{guild_id}/invites", post(invites_create::handler).get(invites_list::handler))
        .route("/api/guilds/{guild_id}/read-states", get(read_states_list::handler))
        .route("/api/guilds/{guild_id}/reports", get(reports_list::handler))
        .route("/api/invites/{code}", post(invites_join::handler).delete(invites_delete::handler))
        .route("/api/channels/{channel_id}", patch(channels_update::handler).delete(channels_delete::handler))
        .route(
            "/api/channels/{channel_id}/messages",
            get(messages_list::handler).post(messages_create::handler).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/attachments/{channel_id}/{attachment_id}/{filename}", get(attachments_get::handler))
        .route(
            "/api/channels/{channel_id}/messages/{message_id}",
            patch(messages_edit::handler).delete(messages_delete::handler),
        )
        .route("/api/channels/{channel_id}/messages/{message_id}/ack", post(messages_ack::handler))
        .route(
            "/api/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            put(reactions::put).delete(reactions::delete),
        )
        .route("/api/channels/{channel_id}/messages/{message_id}/reports", post(reports_create::handler))
        .route("/api/channels/{channel_id}/typing", post(typing::handler))
        .route("/api/reports/{report_id}/resolve", post(reports_resolve::handler))
        .route("/api/channels/{channel_id}/voice", post(voice_join::handler))
        .route("/api/channels/{channel_id}/stream-key", post(stream_key_rotate::handler))
        .route("/api/channels/{channel_id}/stream", get(stream_get::handler).patch(stream_update::handler))
        .route("/api/channels/{channel_id}/stream/reports", post(stream_report::handler))
        .route("/api/guilds/{guild_id}/voice-states", get(voice_states_list::handler))
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, code::METHOD_NOT_ALLOWED, "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(app.cfg.max_body_bytes.max(validate::MIN_BODY_BYTES)))
}

/// The answer for any path no route matches.
pub async fn unknown_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code::UNKNOWN_ROUTE, "unknown route")
}

//! `POST /api/channels/{channel_id}/messages` `{content}` (JSON), or `multipart/form-data` with
//! `content` and up to 10 `files` (see `upload`) → 201 message, sent only after the message (and
//! its files) are committed; then MESSAGE_CREATE goes to the guild (or the DM's recipients). Mentions
//! (`<@id>`) of members (recipients) are recorded for notifications. In a 1:1 DM where either side
//! blocked the other, 403. Each user posts at most `message_burst_per_user` at once, then
//! one per `message_refill_ms_per_user`; a channel's slow mode spaces one member's messages by
//! `slow_mode_secs` (the owner is exempt). Both answer 429 with `retry_after`.

use super::access::postable_channel;
use super::error::{ApiError, ApiResult, code};
use super::extract::{Caller, Path};
use super::{upload, validate};
use crate::app::App;
use crate::id::Id;
use crate::perms::Permissions;
use crate::store::{Channel, Message};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

pub async fn handler(
    State(app): State<App>,
    caller: Caller,
    Path(channel): Path<Id>,
    req: Request,
) -> ApiResult<(StatusCode, axum::Json<Message>)> {
    // A JSON body is read (and refused if bad) first, as every route's; files only once the
    // caller may post here, so nobody else can make the server store them.
    let (json, files) =
        if upload::is_multipart(&req) { (None, Some(req)) } else { (Some(upload::json(&app, req).await?), None) };
    let ch = postable_channel(&app, channel, caller.user).await?;
    if !ch.kind.has_messages() {
        return Err(ApiError::invalid("messages can only be sent to text and live channels and DMs"));
    }
    let (draft, uploads) = match (json, files) {
        (Some(draft), _) => (draft, Vec::new()),
        (None, Some(req)) => upload::multipart(&app, req).await?,
        (None, None) => (upload::Draft::default(), Vec::new()),
    };
    let checked = async {
        let content = if uploads.is_empty() || !draft.content.trim().is_empty() {
            validate::text("content", &draft.content, validate::MAX_MESSAGE_CHARS)?.into_owned()
        } else {
            String::new() // files alone
        };
        // A reply answers a message of this channel; its author is mentioned unless told not to.
        let mut extra_mention = None;
        if let Some(to) = draft.reply_to {
            let answered = app.store.messages.message(to).await?.filter(|m| m.channel_id == channel);
            let answered = answered.ok_or_else(|| ApiError::not_found(code::UNKNOWN_MESSAGE, "message replied to"))?;
            if draft.mention_reply != Some(false) && answered.author_id != caller.user {
                extra_mention = Some(answered.author_id);
            }
        }
        if ch.guild_id.is_none() {
            check_not_blocked(&app, &ch, caller.user).await?;
        }
        check_pace(&app, &ch, caller.user).await?;
        Ok::<_, ApiError>((content, extra_mention))
    }
    .await;
    let (content, extra_mention) = match checked {
        Ok(c) => c,
        Err(e) => {
            upload::drop_uploads(uploads).await;
            return Err(e);
        }
    };
    let attachments = upload::store(&app, channel, uploads).await?;
    let mut mentions = member_mentions(&app, &ch, &content).await?;
    if let Some(author) = extra_mention.filter(|a| !mentions.contains(a)) {
        mentions.push(author);
    }
    let mut message = Message {
        id: app.ids.next(),
        channel_id: channel,
        author_id: caller.user,
        mentions,
        content,
        edited_at: None,
        attachments,
        reply_to: draft.reply_to,
        reactions: Vec::new(),
    };
    let started = std::time::Instant::now();
    let stored = app.store.messages.create_message(&message).await;
    metrics::histogram!("confab_store_write_seconds", "op" => "create_message").record(started.elapsed().as_secs_f64());
    if let Err(e) = stored {
        upload::discard(&app, channel, &message.attachments).await;
        return Err(e.into());
    }
    metrics::counter!("confab_messages_created_total").increment(1);
    app.sign_attachments(&mut message);
    app.publish_in(&ch, "MESSAGE_CREATE", &with_guild(&message, ch.guild_id)).await?;
    // In a cluster: the dispatch is in the stream before the author hears 201.
    app.broker.barrier().await;
    Ok((StatusCode::CREATED, axum::Json(message)))
}

/// A 1:1 DM carries no message between two people when either blocked the other.
async fn check_not_blocked(app: &App, ch: &Channel, user: Id) -> ApiResult<()> {
    let people = app.store.dms.recipients(ch.id).await?;
    if let [a, b] = &people[..] {
        let other = if a.id == user { b.id } else { a.id };
        if app.store.blocks.either_blocked(user, other).await? {
            return Err(ApiError::forbidden("you cannot send messages to this user"));
        }
    }
    Ok(())
}

/// The per-user post limit, then the channel's slow mode.
async fn check_pace(app: &App, ch: &Channel, user: Id) -> ApiResult<()> {
    let now = Instant::now();
    let posted = app.posts.lock().unwrap_or_else(|p| p.into_inner()).check(&user, now);
    posted.map_err(|wait| ApiError::rate_limited(wait).with_message("you are sending messages too fast"))?;
    if ch.slow_mode_secs <= 0 {
        return Ok(());
    }
    // Moderators are not slowed down.
    let moderator = match ch.guild_id {
        Some(guild) => app.access(guild, user).await?.is_some_and(|a| a.has(Permissions::MANAGE_MESSAGES)),
        None => false,
    };
    if moderator {
        return Ok(());
    }
    let gap = Duration::from_secs(ch.slow_mode_secs as u64);
    let slow = app.slow_mode.lock().unwrap_or_else(|p| p.into_inner()).check(&(ch.id, user), gap, now);
    slow.map_err(|wait| {
        let secs = wait.as_secs_f64().ceil() as u64;
        ApiError::rate_limited(wait).with_message(format!("slow mode is on: wait {secs} s before your next message"))
    })
}

/// The `<@id>` mentions in `content` that name members of the channel's guild (recipients of a DM).
pub async fn member_mentions(app: &App, ch: &Channel, content: &str) -> ApiResult<Vec<Id>> {
    let mentioned = validate::mentions(content);
    let mut out = Vec::new();
    match ch.guild_id {
        Some(guild) => {
            for user in mentioned {
                if app.is_member(guild, user).await? {
                    out.push(user);
                }
            }
        }
        None if !mentioned.is_empty() => {
            let people = app.store.dms.recipients(ch.id).await?;
            out.extend(mentioned.into_iter().filter(|u| people.iter().any(|p| p.id == *u)));
        }
        None => {}
    }
    Ok(out)
}

/// A message as dispatched: with its guild id, as Discord does (none in a DM).
pub fn with_guild(m: &Message, guild: Option<Id>) -> serde_json::Value {
    let mut v = json!(m);
    if let Some(guild) = guild {
        v["guild_id"] = json!(guild);
    }
    v
}

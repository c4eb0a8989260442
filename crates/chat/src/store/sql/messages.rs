use super::{SqlStore, id};
use crate::id::Id;
use crate::store::{Attachment, Message, MessageStore, Page, Reaction, Result};
use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashMap;

macro_rules! select {
    ($rest:literal) => {
        concat!("SELECT id, channel_id, author_id, content, mention_ids, edited_at, reply_to FROM messages ", $rest)
    };
}

fn message(row: &AnyRow) -> Result<Message> {
    let mentions: String = row.try_get("mention_ids")?;
    Ok(Message {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        author_id: id(row, "author_id")?,
        content: row.try_get("content")?,
        mentions: mentions.split_whitespace().filter_map(|s| s.parse().ok()).collect(),
        edited_at: row.try_get("edited_at")?,
        attachments: Vec::new(),
        reply_to: super::opt_id(row, "reply_to")?,
        reactions: Vec::new(),
    })
}

fn attachment(row: &AnyRow) -> Result<Attachment> {
    Ok(Attachment {
        id: id(row, "id")?,
        filename: row.try_get("filename")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        width: row.try_get("width")?,
        height: row.try_get("height")?,
        url: String::new(),
        thumbnail_url: None,
        thumbnail: row.try_get::<i64, _>("thumbnail")? != 0,
    })
}

pub(super) async fn insert_attachments(conn: &mut AnyConnection, m: &Message) -> Result<()> {
    for a in &m.attachments {
        sqlx::query(
            "INSERT INTO attachments (id, message_id, channel_id, filename, content_type, size, width, height, thumbnail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(a.id.0)
        .bind(m.id.0)
        .bind(m.channel_id.0)
        .bind(&a.filename)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(a.width)
        .bind(a.height)
        .bind(i64::from(a.thumbnail))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Reactions shown per emoji: who, the first this many.
const REACTION_USERS: usize = 100;

/// Fills in the attachments and reactions of `messages` (all of one channel), a query each.
async fn with_attachments(pool: &sqlx::AnyPool, channel: Id, messages: Vec<Message>) -> Result<Vec<Message>> {
    let mut messages = with_files(pool, channel, messages).await?;
    let (Some(lo), Some(hi)) = (messages.iter().map(|m| m.id).min(), messages.iter().map(|m| m.id).max()) else {
        return Ok(messages);
    };
    let rows = sqlx::query(
        "SELECT message_id, emoji, user_id FROM reactions \
         WHERE channel_id = $1 AND message_id >= $2 AND message_id <= $3 ORDER BY created_at, user_id",
    )
    .bind(channel.0)
    .bind(lo.0)
    .bind(hi.0)
    .fetch_all(pool)
    .await?;
    let mut by_message: HashMap<Id, Vec<Reaction>> = HashMap::new();
    for r in &rows {
        let (emoji, user): (String, Id) = (r.try_get("emoji")?, id(r, "user_id")?);
        let list = by_message.entry(id(r, "message_id")?).or_default();
        let i = match list.iter().position(|x| x.emoji == emoji) {
            Some(i) => i,
            None => {
                list.push(Reaction { emoji, count: 0, users: Vec::new() });
                list.len() - 1
            }
        };
        list[i].count += 1;
        if list[i].users.len() < REACTION_USERS {
            list[i].users.push(user);
        }
    }
    for m in &mut messages {
        m.reactions = by_message.remove(&m.id).unwrap_or_default();
    }
    Ok(messages)
}

async fn with_files(pool: &sqlx::AnyPool, channel: Id, mut messages: Vec<Message>) -> Result<Vec<Message>> {
    let (Some(lo), Some(hi)) = (messages.iter().map(|m| m.id).min(), messages.iter().map(|m| m.id).max()) else {
        return Ok(messages);
    };
    let rows = sqlx::query(
        "SELECT id, message_id, filename, content_type, size, width, height, thumbnail FROM attachments \
         WHERE channel_id = $1 AND message_id >= $2 AND message_id <= $3 ORDER BY id",
    )
    .bind(channel.0)
    .bind(lo.0)
    .bind(hi.0)
    .fetch_all(pool)
    .await?;
    let mut by_message: HashMap<Id, Vec<Attachment>> = HashMap::new();
    for r in &rows {
        by_message.entry(id(r, "message_id")?).or_default().push(attachment(r)?);
    }
    for m in &mut messages {
        m.attachments = by_message.remove(&m.id).unwrap_or_default();
    }
    Ok(messages)
}

pub(super) fn mention_ids(m: &Message) -> String {
    m.mentions.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
}

pub(super) async fn insert_mentions(conn: &mut AnyConnection, m: &Message) -> Result<()> {
    for user in &m.mentions {
        sqlx::query(
            "INSERT INTO mentions (message_id, user_id, channel_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(m.id.0)
        .bind(user.0)
        .bind(m.channel_id.0)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Inserts one message and its mentions in a transaction of its own (the group commit's fallback).
pub(super) async fn insert_one(pool: &sqlx::AnyPool, m: &Message) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO messages (id, channel_id, author_id, content, mention_ids, edited_at, reply_to) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(m.id.0)
    .bind(m.channel_id.0)
    .bind(m.author_id.0)
    .bind(&m.content)
    .bind(mention_ids(m))
    .bind(m.edited_at)
    .bind(m.reply_to.map(|r| r.0))
    .execute(&mut *tx)
    .await?;
    insert_mentions(&mut tx, m).await?;
    insert_attachments(&mut tx, m).await?;
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn create_message(&self, m: &Message) -> Result<()> {
        self.commits.insert(m.clone()).await
    }

    async fn message(&self, mid: Id) -> Result<Option<Message>> {
        let Some(m) = sqlx::query(select!("WHERE id = $1"))
            .bind(mid.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| message(&r))
            .transpose()?
        else {
            return Ok(None);
        };
        let channel = m.channel_id;
        Ok(with_attachments(&self.pool, channel, vec![m]).await?.pop())
    }

    async fn edit_message(&self, m: &Message) -> Result<bool> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE messages SET content = $1, mention_ids = $2, edited_at = $3 WHERE id = $4")
            .bind(&m.content)
            .bind(mention_ids(m))
            .bind(m.edited_at)
            .bind(m.id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM mentions WHERE message_id = $1").bind(m.id.0).execute(&mut *tx).await?;
        insert_mentions(&mut tx, m).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_message(&self, mid: Id) -> Result<bool> {
        let _writer = self.writer().await;
        // Mentions go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM messages WHERE id = $1").bind(mid.0).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn attachment(&self, aid: Id) -> Result<Option<(Id, Attachment)>> {
        let row = sqlx::query(
            "SELECT id, channel_id, filename, content_type, size, width, height, thumbnail FROM attachments WHERE id = $1",
        )
        .bind(aid.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((id(&r, "channel_id")?, attachment(&r)?))).transpose()
    }

    async fn add_reaction(&self, channel: Id, message: Id, user: Id, emoji: &str, now_ms: i64) -> Result<bool> {
        let _writer = self.writer().await;
        let r = sqlx::query(
            "INSERT INTO reactions (message_id, emoji, user_id, channel_id, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (message_id, emoji, user_id) DO NOTHING",
        )
        .bind(message.0)
        .bind(emoji)
        .bind(user.0)
        .bind(channel.0)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn remove_reaction(&self, message: Id, user: Id, emoji: &str) -> Result<bool> {
        let _writer = self.writer().await;
        let r = sqlx::query("DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3")
            .bind(message.0)
            .bind(emoji)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn history(&self, channel: Id, page: Page) -> Result<Vec<Message>> {
        let rows = match page {
            Page::Latest { limit } => {
                sqlx::query(select!("WHERE channel_id = $1 ORDER BY id DESC LIMIT $2"))
                    .bind(channel.0)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            Page::Before { id, limit } => {
                sqlx::query(select!("WHERE channel_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"))
                    .bind(channel.0)
                    .bind(id.0)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            Page::After { id, limit } => {
                let mut rows = sqlx::query(select!("WHERE channel_id = $1 AND id > $2 ORDER BY id ASC LIMIT $3"))
                    .bind(channel.0)
                    .bind(id.0)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.reverse();
                rows
            }
        };
        let messages = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
        with_attachments(&self.pool, channel, messages).await
    }
}

-- Direct messages. A DM channel is a channel with no guild (kind 'dm'): messages, read states and
-- reports keep working by channel id. guild_id becomes nullable and the kind's CHECK gains 'dm',
-- so the table is rebuilt as in 0004 (foreign keys off, outside the migrator's transaction).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE channels_new (
    id             BIGINT PRIMARY KEY,
    guild_id       BIGINT REFERENCES guilds(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('text', 'voice', 'live', 'dm')),
    position       BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    voice_mode     TEXT NOT NULL DEFAULT 'hybrid' CHECK (voice_mode IN ('hybrid', 'sfu', 'mcu')),
    slow_mode_secs INTEGER NOT NULL DEFAULT 0,
    CHECK ((kind = 'dm') = (guild_id IS NULL))
);
INSERT INTO channels_new (id, guild_id, name, kind, position, created_at, voice_mode, slow_mode_secs)
    SELECT id, guild_id, name, kind, position, created_at, voice_mode, slow_mode_secs FROM channels;
DROP TABLE channels;
ALTER TABLE channels_new RENAME TO channels;
CREATE INDEX channels_guild ON channels(guild_id);
-- Who is in each DM (2 to 10 people); only they can read it.
CREATE TABLE dm_recipients (
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX dm_recipients_user ON dm_recipients(user_id);
-- The one 1:1 DM of each pair of users ("<lower id>:<higher id>"), so opening it again finds it.
CREATE TABLE dm_pairs (
    pair       TEXT PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE
);
-- A user blocked by another cannot DM them.
CREATE TABLE blocks (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);
COMMIT;
PRAGMA foreign_keys = ON;

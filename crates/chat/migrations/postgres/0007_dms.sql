-- Direct messages. A DM channel is a channel with no guild (kind 'dm'): messages, read states and
-- reports keep working by channel id.
ALTER TABLE channels ALTER COLUMN guild_id DROP NOT NULL;
ALTER TABLE channels DROP CONSTRAINT channels_kind_check;
ALTER TABLE channels ADD CONSTRAINT channels_kind_check CHECK (kind IN ('text', 'voice', 'live', 'dm'));
ALTER TABLE channels ADD CONSTRAINT channels_dm_no_guild CHECK ((kind = 'dm') = (guild_id IS NULL));
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

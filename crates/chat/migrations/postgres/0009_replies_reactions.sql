-- Replies (the message answered, in the same channel; null when it is gone) and reactions (one
-- per user, emoji and message).
ALTER TABLE messages ADD COLUMN reply_to BIGINT;
CREATE TABLE reactions (
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);
CREATE INDEX reactions_channel ON reactions(channel_id, message_id);

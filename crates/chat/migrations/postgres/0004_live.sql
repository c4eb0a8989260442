-- Live channels, and their stream keys as SHA-256 (the key itself is shown once, at rotation).
ALTER TABLE channels DROP CONSTRAINT channels_kind_check;
ALTER TABLE channels ADD CONSTRAINT channels_kind_check CHECK (kind IN ('text', 'voice', 'live'));
CREATE TABLE stream_keys (
    channel_id BIGINT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

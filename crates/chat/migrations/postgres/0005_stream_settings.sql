-- A live channel's stream settings, set by its owner: whether anyone (not only members) may
-- watch, and the title shown on the watch page.
CREATE TABLE stream_settings (
    channel_id BIGINT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    public     BIGINT NOT NULL DEFAULT 0,
    title      TEXT NOT NULL DEFAULT ''
);

-- Live channels. The kind's CHECK gains 'live'; SQLite cannot alter a CHECK, so the table is
-- rebuilt as SQLite's documentation says (create, copy, drop, rename), with foreign keys off so
-- dropping the old table cascades to nothing. Run outside a transaction of the migrator's own.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE channels_new (
    id             BIGINT PRIMARY KEY,
    guild_id       BIGINT NOT NULL REFERENCES guilds(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('text', 'voice', 'live')),
    position       BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    voice_mode     TEXT NOT NULL DEFAULT 'hybrid' CHECK (voice_mode IN ('hybrid', 'sfu', 'mcu')),
    slow_mode_secs INTEGER NOT NULL DEFAULT 0
);
INSERT INTO channels_new (id, guild_id, name, kind, position, created_at, voice_mode, slow_mode_secs)
    SELECT id, guild_id, name, kind, position, created_at, voice_mode, slow_mode_secs FROM channels;
DROP TABLE channels;
ALTER TABLE channels_new RENAME TO channels;
CREATE INDEX channels_guild ON channels(guild_id);
-- A live channel's stream key, as SHA-256 (the key itself is shown once, at rotation).
CREATE TABLE stream_keys (
    channel_id BIGINT PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
COMMIT;
PRAGMA foreign_keys = ON;

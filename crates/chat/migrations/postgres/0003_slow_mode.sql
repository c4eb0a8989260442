-- Seconds one member must wait between two messages in a text channel (0: off). Owners are exempt.
ALTER TABLE channels ADD COLUMN slow_mode_secs BIGINT NOT NULL DEFAULT 0;

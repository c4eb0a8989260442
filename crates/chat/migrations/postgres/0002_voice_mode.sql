-- How a voice channel's room carries media: hybrid (audio SFU + video MCU), sfu, or mcu.
ALTER TABLE channels ADD COLUMN voice_mode TEXT NOT NULL DEFAULT 'hybrid' CHECK (voice_mode IN ('hybrid', 'sfu', 'mcu'));

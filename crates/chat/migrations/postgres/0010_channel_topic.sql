-- A channel's topic, shown under its name (text and live channels; empty: none).
ALTER TABLE channels ADD COLUMN topic TEXT NOT NULL DEFAULT '';

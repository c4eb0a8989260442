-- What a report is about: a message (as before) or a live channel's stream (its message fields
-- then name the stream: message_id 0, the streamer, the stream's title).
ALTER TABLE reports ADD COLUMN subject TEXT NOT NULL DEFAULT 'message';

-- Files sent with a message; their bytes are in the blob store under `<channel_id>/<id>` (and
-- `<channel_id>/<id>.thumb` when `thumbnail` is set: an image's preview).
CREATE TABLE attachments (
    id           BIGINT PRIMARY KEY,
    message_id   BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    channel_id   BIGINT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    width        BIGINT,
    height       BIGINT,
    thumbnail    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX attachments_message ON attachments(channel_id, message_id);

-- What a user shows others: a display name (shown instead of the username when set) and an
-- avatar (the hash naming its square PNG in the blob store, `avatars/<user_id>/<hash>.png`).
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN avatar TEXT;

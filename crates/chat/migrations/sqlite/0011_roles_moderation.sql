-- Roles with a permission bitfield (Discord's bit values). Every guild has an `@everyone` role
-- whose id is the guild's own; a member's permissions are the OR of it and their roles'.
CREATE TABLE roles (
    id          BIGINT PRIMARY KEY,
    guild_id    BIGINT NOT NULL REFERENCES guilds(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    permissions BIGINT NOT NULL,
    -- higher is more senior; @everyone is 0
    position    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX roles_guild ON roles(guild_id);

CREATE TABLE member_roles (
    guild_id BIGINT NOT NULL,
    user_id  BIGINT NOT NULL,
    role_id  BIGINT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (guild_id, user_id, role_id),
    FOREIGN KEY (guild_id, user_id) REFERENCES members(guild_id, user_id) ON DELETE CASCADE
);

-- Who may not come back (an invite refuses them).
CREATE TABLE bans (
    guild_id     BIGINT NOT NULL REFERENCES guilds(id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    moderator_id BIGINT NOT NULL,
    reason       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Moderation and management actions, newest last (ids are snowflakes, so time-ordered).
CREATE TABLE audit_log (
    id         BIGINT PRIMARY KEY,
    guild_id   BIGINT NOT NULL REFERENCES guilds(id) ON DELETE CASCADE,
    actor_id   BIGINT NOT NULL,
    action     TEXT NOT NULL,
    target_id  BIGINT,
    reason     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_guild ON audit_log(guild_id, id);

-- A time-out: until then (unix ms) the member may read but not post, react or speak.
ALTER TABLE members ADD COLUMN timeout_until BIGINT;

-- @everyone of the guilds made before roles: create invites (1 << 0).
INSERT INTO roles (id, guild_id, name, permissions, position, created_at)
SELECT id, id, '@everyone', 1, 0, created_at FROM guilds;

-- The portal's sign-in sessions: one row per session, keyed by the SHA-256 of the id in the
-- cookie (a copy of the database signs nobody in), with whose it is and from where, so a person
-- can list their sessions and end them, and disabling an account or changing its password
-- ends them at once.
CREATE TABLE web_sessions (
    id           VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id      BIGINT,
    data         TEXT NOT NULL,
    ip           VARCHAR(64) NOT NULL,
    user_agent   VARCHAR(255) NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

-- The first-run link (/setup?token=…) while no administrator exists, stored hashed: any
-- server on the database accepts it, and it is deleted once the root account exists.
CREATE TABLE setup_tokens (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- The language a person chose for the portal (empty: follow the browser).
ALTER TABLE users ADD COLUMN locale VARCHAR(16) NOT NULL DEFAULT '';

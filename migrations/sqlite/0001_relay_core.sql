-- Relay core schema. Times are Unix milliseconds; money is integer quota units or micro-dollars.

CREATE TABLE meta (
    name  VARCHAR(64) PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
-- Bumped by every write that changes what the relay's in-memory snapshot holds.
INSERT INTO meta (name, value) VALUES ('data_version', 1);

CREATE TABLE user_groups (
    name            VARCHAR(32) PRIMARY KEY NOT NULL,
    ratio_ppm       BIGINT NOT NULL,
    description     TEXT NOT NULL,
    user_selectable BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
INSERT INTO user_groups (name, ratio_ppm, description, user_selectable, created_at, updated_at)
VALUES ('default', 1000000, 'Default group', 1, 0, 0);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       VARCHAR(32) NOT NULL,
    display_name   VARCHAR(64) NOT NULL,
    email          VARCHAR(255),
    email_verified BIGINT NOT NULL,
    password_hash  TEXT,
    role           VARCHAR(16) NOT NULL,
    status         VARCHAR(16) NOT NULL,
    group_name     VARCHAR(32) NOT NULL,
    quota          BIGINT NOT NULL,
    used_quota     BIGINT NOT NULL,
    request_count  BIGINT NOT NULL,
    invite_code    VARCHAR(32),
    inviter_id     BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_invite_code_key ON users (invite_code);

CREATE TABLE user_identities (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT NOT NULL,
    provider   VARCHAR(32) NOT NULL,
    subject    VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX user_identities_provider_subject_key ON user_identities (provider, subject);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);

CREATE TABLE tokens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         BIGINT NOT NULL,
    name            VARCHAR(64) NOT NULL,
    key_hash        VARCHAR(64) NOT NULL,
    key_display     VARCHAR(32) NOT NULL,
    status          VARCHAR(16) NOT NULL,
    expires_at      BIGINT,
    unlimited       BIGINT NOT NULL,
    remaining_quota BIGINT NOT NULL,
    used_quota      BIGINT NOT NULL,
    request_count   BIGINT NOT NULL,
    allowed_models  TEXT NOT NULL,
    allowed_ips     TEXT NOT NULL,
    last_used_at    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX tokens_key_hash_key ON tokens (key_hash);
CREATE INDEX tokens_user_idx ON tokens (user_id);

CREATE TABLE channels (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              VARCHAR(64) NOT NULL,
    channel_type      VARCHAR(32) NOT NULL,
    base_url          TEXT NOT NULL,
    secret_keys       TEXT NOT NULL,
    models            TEXT NOT NULL,
    model_mapping     TEXT NOT NULL,
    group_names       TEXT NOT NULL,
    priority          BIGINT NOT NULL,
    weight            BIGINT NOT NULL,
    status            VARCHAR(16) NOT NULL,
    status_reason     TEXT NOT NULL,
    status_changed_at BIGINT NOT NULL,
    timeout_secs      BIGINT NOT NULL,
    extra_headers     TEXT NOT NULL,
    used_quota        BIGINT NOT NULL,
    request_count     BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX channels_name_key ON channels (name);

-- The (group, model) → channel lookup, rebuilt from a channel's groups and models on every
-- channel write.
CREATE TABLE channel_routes (
    group_name VARCHAR(32) NOT NULL,
    model      VARCHAR(128) NOT NULL,
    channel_id BIGINT NOT NULL,
    PRIMARY KEY (group_name, model, channel_id),
    FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE
);
CREATE INDEX channel_routes_channel_idx ON channel_routes (channel_id);

-- Prices in micro-dollars: per 1M tokens, or per request when per_request_price is set.
CREATE TABLE prices (
    model              VARCHAR(128) PRIMARY KEY NOT NULL,
    input_price        BIGINT,
    output_price       BIGINT,
    cached_input_price BIGINT,
    per_request_price  BIGINT,
    updated_at         BIGINT NOT NULL
);

CREATE TABLE request_logs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at        BIGINT NOT NULL,
    request_id        VARCHAR(64) NOT NULL,
    user_id           BIGINT NOT NULL,
    username          VARCHAR(32) NOT NULL,
    token_id          BIGINT NOT NULL,
    token_name        VARCHAR(64) NOT NULL,
    group_name        VARCHAR(32) NOT NULL,
    endpoint          VARCHAR(32) NOT NULL,
    model             VARCHAR(128) NOT NULL,
    upstream_model    VARCHAR(128) NOT NULL,
    channel_id        BIGINT,
    channel_name      VARCHAR(64) NOT NULL,
    attempts          BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens     BIGINT NOT NULL,
    usage_estimated   BIGINT NOT NULL,
    cost              BIGINT NOT NULL,
    latency_ms        BIGINT NOT NULL,
    ttft_ms           BIGINT,
    is_stream         BIGINT NOT NULL,
    outcome           VARCHAR(16) NOT NULL,
    status_code       BIGINT NOT NULL,
    error_message     TEXT NOT NULL,
    client_ip         VARCHAR(64) NOT NULL
);
CREATE INDEX request_logs_user_idx ON request_logs (user_id, id);
CREATE INDEX request_logs_created_idx ON request_logs (created_at);
CREATE INDEX request_logs_request_id_idx ON request_logs (request_id);
CREATE INDEX request_logs_token_idx ON request_logs (token_id, id);

-- Typed runtime options an admin can change while the server runs.
CREATE TABLE options (
    name       VARCHAR(64) PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE admin_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL,
    name         VARCHAR(64) NOT NULL,
    token_hash   VARCHAR(64) NOT NULL,
    token_display VARCHAR(32) NOT NULL,
    last_used_at BIGINT,
    created_at   BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX admin_tokens_hash_key ON admin_tokens (token_hash);

-- Redemption codes the operator sells or gives away: only the SHA-256 of each code is kept (a
-- copy of the database hands out nothing spendable), with its first characters to recognise it.
-- A code is worth `amount` quota units per use; `uses_left` counts down from `uses` and is taken
-- by a conditional update, so concurrent redemptions can never take more than there is.
CREATE TABLE redemption_codes (
    id          BIGSERIAL PRIMARY KEY,
    code_hash   VARCHAR(64) NOT NULL,
    prefix      VARCHAR(16) NOT NULL,
    name        VARCHAR(64) NOT NULL DEFAULT '',
    amount      BIGINT NOT NULL,
    uses        BIGINT NOT NULL,
    uses_left   BIGINT NOT NULL,
    status      VARCHAR(16) NOT NULL DEFAULT 'active',
    expires_at  BIGINT,
    created_by  VARCHAR(64) NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX redemption_codes_hash_idx ON redemption_codes (code_hash);
CREATE INDEX redemption_codes_name_idx ON redemption_codes (name);

-- Who redeemed which code and when: one row per account and code, so a gift code of several
-- uses credits each account once.
CREATE TABLE code_redemptions (
    id          BIGSERIAL PRIMARY KEY,
    code_id     BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    amount      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX code_redemptions_once_idx ON code_redemptions (code_id, user_id);
CREATE INDEX code_redemptions_user_idx ON code_redemptions (user_id);

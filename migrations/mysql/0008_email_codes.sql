-- What the portal sends by email: the 6-digit code that proves an address is one's own, and
-- the link that sets a new password. Stored as SHA-256 (a copy of the database proves
-- nothing), expiring, spent once, with a count of wrong tries so a code cannot be guessed.
CREATE TABLE email_codes (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    purpose     VARCHAR(16) NOT NULL,
    email       VARCHAR(255) NOT NULL,
    code_hash   VARCHAR(64) NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX email_codes_user_idx ON email_codes (user_id, purpose, id);
CREATE INDEX email_codes_hash_idx ON email_codes (code_hash);

-- The dashboard sums one account's requests by day over the last 30 days.
CREATE INDEX request_logs_user_time_idx ON request_logs (user_id, created_at);

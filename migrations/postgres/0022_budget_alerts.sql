-- Budget alerts already sent: one row per budget scope (`org`, `team` or `member`, as in
-- budget_spend), period (`window_start`, UTC ms), threshold (percent: 80 or 100) and recipient
-- (an account). A server claims an alert by inserting its row before mailing it; a conflict
-- means another round (or another server) has it. A mail that fails removes its row again,
-- so the next round retries.
CREATE TABLE budget_alerts (
    scope_kind    VARCHAR(16) NOT NULL,
    scope_id      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    threshold     BIGINT NOT NULL,
    user_id       BIGINT NOT NULL,
    claimed_at    BIGINT NOT NULL,
    PRIMARY KEY (scope_kind, scope_id, window_start, threshold, user_id)
);
-- Rows of periods long over are dropped by age.
CREATE INDEX budget_alerts_window_idx ON budget_alerts (window_start);

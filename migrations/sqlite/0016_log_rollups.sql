-- Rollups of the request logs per 15 minutes (UTC) per user, key, model, channel, group and
-- outcome, with fixed histograms of latency (`lat_*`) and time to first token (`ttft_*`), whose
-- bounds are in `domain::latency`. The billing writer keeps them in the same transaction as
-- the log rows, so totals, the dashboard and the overview read them instead of the logs.
-- No key column is NULL, so every backend's upsert finds the row: a request without a channel
-- has `channel_id` 0, and `org_id` and `team_id` are 0 until organisations and teams exist.
CREATE TABLE log_rollups (
    bucket_start      BIGINT NOT NULL,
    user_id           BIGINT NOT NULL,
    token_id          BIGINT NOT NULL,
    model             VARCHAR(128) NOT NULL,
    channel_id        BIGINT NOT NULL,
    group_name        VARCHAR(32) NOT NULL,
    outcome           VARCHAR(16) NOT NULL,
    org_id            BIGINT NOT NULL DEFAULT 0,
    team_id           BIGINT NOT NULL DEFAULT 0,
    requests          BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost              BIGINT NOT NULL,
    lat_0 BIGINT NOT NULL DEFAULT 0,
    lat_1 BIGINT NOT NULL DEFAULT 0,
    lat_2 BIGINT NOT NULL DEFAULT 0,
    lat_3 BIGINT NOT NULL DEFAULT 0,
    lat_4 BIGINT NOT NULL DEFAULT 0,
    lat_5 BIGINT NOT NULL DEFAULT 0,
    lat_6 BIGINT NOT NULL DEFAULT 0,
    lat_7 BIGINT NOT NULL DEFAULT 0,
    lat_8 BIGINT NOT NULL DEFAULT 0,
    lat_9 BIGINT NOT NULL DEFAULT 0,
    lat_10 BIGINT NOT NULL DEFAULT 0,
    lat_11 BIGINT NOT NULL DEFAULT 0,
    lat_12 BIGINT NOT NULL DEFAULT 0,
    lat_13 BIGINT NOT NULL DEFAULT 0,
    lat_14 BIGINT NOT NULL DEFAULT 0,
    lat_15 BIGINT NOT NULL DEFAULT 0,
    ttft_0 BIGINT NOT NULL DEFAULT 0,
    ttft_1 BIGINT NOT NULL DEFAULT 0,
    ttft_2 BIGINT NOT NULL DEFAULT 0,
    ttft_3 BIGINT NOT NULL DEFAULT 0,
    ttft_4 BIGINT NOT NULL DEFAULT 0,
    ttft_5 BIGINT NOT NULL DEFAULT 0,
    ttft_6 BIGINT NOT NULL DEFAULT 0,
    ttft_7 BIGINT NOT NULL DEFAULT 0,
    ttft_8 BIGINT NOT NULL DEFAULT 0,
    ttft_9 BIGINT NOT NULL DEFAULT 0,
    ttft_10 BIGINT NOT NULL DEFAULT 0,
    ttft_11 BIGINT NOT NULL DEFAULT 0,
    ttft_12 BIGINT NOT NULL DEFAULT 0,
    ttft_13 BIGINT NOT NULL DEFAULT 0,
    ttft_14 BIGINT NOT NULL DEFAULT 0,
    ttft_15 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket_start, user_id, token_id, model, channel_id, group_name, outcome, org_id,
                 team_id)
);
CREATE INDEX log_rollups_user_idx ON log_rollups (user_id, bucket_start);
CREATE INDEX log_rollups_token_idx ON log_rollups (token_id, bucket_start);
CREATE INDEX log_rollups_model_idx ON log_rollups (model, bucket_start);
CREATE INDEX log_rollups_channel_idx ON log_rollups (channel_id, bucket_start);
-- The sums over a time range (totals, the overview, per model, user or channel) read this
-- narrow index alone instead of the rows with their histograms.
CREATE INDEX log_rollups_sums_idx ON log_rollups (bucket_start, model, user_id, channel_id,
    outcome, requests, prompt_tokens, completion_tokens, cost);
-- The overview sums the ledger's top-ups, redemptions and refunds over a time range.
CREATE INDEX ledger_created_idx ON ledger (created_at);
-- The logs written before this step are rolled up in the background, by id, up to the newest
-- one now (`through_id`); `done_id` is how far it got. The writer rolls up every later row.
CREATE TABLE rollup_backfill (
    id         BIGINT PRIMARY KEY NOT NULL,
    through_id BIGINT NOT NULL,
    done_id    BIGINT NOT NULL
);
INSERT INTO rollup_backfill (id, through_id, done_id)
SELECT 1, COALESCE(MAX(id), 0), 0 FROM request_logs;

-- Coarser rollups for the console's overview, so that 30 days read a few thousand rows instead
-- of the ~200,000 15-minute rows a busy site has (almost one per request when traffic is spread
-- over many users and keys). Each is a sum of `log_rollups` rows, kept by the same writes (the
-- billing writer's transaction, the backfill's steps, `tollgate rollups rebuild`) and, like
-- them, kept when logs are purged:
-- - `usage_rollups`: per hour and per day (UTC; `grain_ms` says which) per model, channel,
--   group and outcome, with the histograms: the top models and channels, each channel's errors
--   and percentiles.
-- - `user_usage_rollups`: per hour and per day per account: the top users.
-- - `total_usage_rollups`: per 15 minutes, everything together: the chart's periods, which are
--   hours or days of the site's zone (whose offset may be a half or a quarter hour).
-- No key column is NULL, as in `log_rollups`; text keys are VARCHAR (CHAR pads, which the Any
-- driver reads back wrongly on PostgreSQL).
CREATE TABLE usage_rollups (
    grain_ms          BIGINT NOT NULL,
    bucket_start      BIGINT NOT NULL,
    model             VARCHAR(128) NOT NULL,
    channel_id        BIGINT NOT NULL,
    group_name        VARCHAR(32) NOT NULL,
    outcome           VARCHAR(16) NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost BIGINT NOT NULL DEFAULT 0,
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
    PRIMARY KEY (grain_ms, bucket_start, model, channel_id, group_name, outcome)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE user_usage_rollups (
    grain_ms          BIGINT NOT NULL,
    bucket_start      BIGINT NOT NULL,
    user_id           BIGINT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grain_ms, bucket_start, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE total_usage_rollups (
    grain_ms          BIGINT NOT NULL,
    bucket_start      BIGINT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grain_ms, bucket_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- What is rolled up already is summed in here now, before this version writes anything, so no
-- row is missed or counted twice: every later write to `log_rollups` (the billing writer, the
-- steps of a backfill still under way, a rebuild) adds to these tables in its own transaction.
INSERT INTO usage_rollups (grain_ms, bucket_start, model, channel_id, group_name, outcome, requests, prompt_tokens, completion_tokens, cost, lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11, lat_12, lat_13, lat_14, lat_15, ttft_0, ttft_1, ttft_2, ttft_3, ttft_4, ttft_5, ttft_6, ttft_7, ttft_8, ttft_9, ttft_10, ttft_11, ttft_12, ttft_13, ttft_14, ttft_15)
SELECT 3600000, bucket_start - (bucket_start % 3600000), model, channel_id, group_name, outcome,
    SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost), SUM(lat_0), SUM(lat_1), SUM(lat_2), SUM(lat_3), SUM(lat_4), SUM(lat_5), SUM(lat_6), SUM(lat_7), SUM(lat_8), SUM(lat_9), SUM(lat_10), SUM(lat_11), SUM(lat_12), SUM(lat_13), SUM(lat_14), SUM(lat_15), SUM(ttft_0), SUM(ttft_1), SUM(ttft_2), SUM(ttft_3), SUM(ttft_4), SUM(ttft_5), SUM(ttft_6), SUM(ttft_7), SUM(ttft_8), SUM(ttft_9), SUM(ttft_10), SUM(ttft_11), SUM(ttft_12), SUM(ttft_13), SUM(ttft_14), SUM(ttft_15)
FROM log_rollups GROUP BY bucket_start - (bucket_start % 3600000), model, channel_id, group_name, outcome;
INSERT INTO usage_rollups (grain_ms, bucket_start, model, channel_id, group_name, outcome, requests, prompt_tokens, completion_tokens, cost, lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11, lat_12, lat_13, lat_14, lat_15, ttft_0, ttft_1, ttft_2, ttft_3, ttft_4, ttft_5, ttft_6, ttft_7, ttft_8, ttft_9, ttft_10, ttft_11, ttft_12, ttft_13, ttft_14, ttft_15)
SELECT 86400000, bucket_start - (bucket_start % 86400000), model, channel_id, group_name, outcome,
    SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost), SUM(lat_0), SUM(lat_1), SUM(lat_2), SUM(lat_3), SUM(lat_4), SUM(lat_5), SUM(lat_6), SUM(lat_7), SUM(lat_8), SUM(lat_9), SUM(lat_10), SUM(lat_11), SUM(lat_12), SUM(lat_13), SUM(lat_14), SUM(lat_15), SUM(ttft_0), SUM(ttft_1), SUM(ttft_2), SUM(ttft_3), SUM(ttft_4), SUM(ttft_5), SUM(ttft_6), SUM(ttft_7), SUM(ttft_8), SUM(ttft_9), SUM(ttft_10), SUM(ttft_11), SUM(ttft_12), SUM(ttft_13), SUM(ttft_14), SUM(ttft_15)
FROM log_rollups GROUP BY bucket_start - (bucket_start % 86400000), model, channel_id, group_name, outcome;
INSERT INTO user_usage_rollups (grain_ms, bucket_start, user_id, requests, prompt_tokens, completion_tokens, cost)
SELECT 3600000, bucket_start - (bucket_start % 3600000), user_id,
    SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost)
FROM log_rollups GROUP BY bucket_start - (bucket_start % 3600000), user_id;
INSERT INTO user_usage_rollups (grain_ms, bucket_start, user_id, requests, prompt_tokens, completion_tokens, cost)
SELECT 86400000, bucket_start - (bucket_start % 86400000), user_id,
    SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost)
FROM log_rollups GROUP BY bucket_start - (bucket_start % 86400000), user_id;
INSERT INTO total_usage_rollups (grain_ms, bucket_start, requests, prompt_tokens, completion_tokens, cost)
SELECT 900000, bucket_start - (bucket_start % 900000),
    SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost)
FROM log_rollups GROUP BY bucket_start - (bucket_start % 900000);

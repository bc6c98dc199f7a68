-- The last `channel test`: when, how long the call took, and what happened.
ALTER TABLE channels ADD COLUMN tested_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN test_latency_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN test_result VARCHAR(512) NOT NULL DEFAULT '';

-- A key's budget that starts over every day, week or month in the site's time zone, on top of
-- (not instead of) its own limit and its owner's balance. `budget_period` is '' (none), 'daily',
-- 'weekly' or 'monthly'; `budget_quota` is what one period may spend. `budget_spent` is what the
-- period that began at `budget_window` (UTC milliseconds) has spent so far: a row whose window
-- is older than the current period has spent nothing in it yet.
ALTER TABLE tokens ADD COLUMN budget_period VARCHAR(16) NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN budget_quota BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN budget_spent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN budget_window BIGINT NOT NULL DEFAULT 0;

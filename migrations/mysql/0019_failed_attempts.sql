-- Each request's attempts before its last, as a JSON list (channel, status, time, error),
-- when a failure moved it on to another channel or key; empty otherwise. The log's own
-- channel, status and error are the last attempt's.
ALTER TABLE request_logs ADD COLUMN failed_attempts TEXT NOT NULL DEFAULT '';

-- Keys of a multi-key channel disabled one by one (an upstream answered 401/403 for that key),
-- as a JSON list of {"fingerprint", "reason", "at"}; NULL when every key is in service.
ALTER TABLE channels ADD COLUMN disabled_keys TEXT;

-- Prompt-cache writes, priced apart from plain input (Anthropic and Bedrock charge 1.25× input),
-- and counted in each request's log.
ALTER TABLE prices ADD COLUMN cache_write_price BIGINT;
ALTER TABLE request_logs ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0;

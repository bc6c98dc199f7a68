-- Keys of a multi-key channel disabled one by one (an upstream answered 401/403 for that key),
-- as a JSON list of {"fingerprint", "reason", "at"}; NULL when every key is in service.
ALTER TABLE channels ADD COLUMN disabled_keys TEXT;

-- Rate limits: requests per minute (`rpm`), tokens per minute (`tpm`, input and output
-- together) and requests in flight at once (`max_concurrent`). A key's count its own requests;
-- an account's count every key of the person together; a group's apply to each key of the
-- group that sets none of its own (each key counted on its own). NULL: no limit.
ALTER TABLE tokens ADD COLUMN rpm BIGINT;
ALTER TABLE tokens ADD COLUMN tpm BIGINT;
ALTER TABLE tokens ADD COLUMN max_concurrent BIGINT;
ALTER TABLE users ADD COLUMN rpm BIGINT;
ALTER TABLE users ADD COLUMN tpm BIGINT;
ALTER TABLE users ADD COLUMN max_concurrent BIGINT;
ALTER TABLE user_groups ADD COLUMN rpm BIGINT;
ALTER TABLE user_groups ADD COLUMN tpm BIGINT;
ALTER TABLE user_groups ADD COLUMN max_concurrent BIGINT;

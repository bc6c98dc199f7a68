-- Each request's log keeps the client's own model name when an alias or a dated name resolved
-- it to another, the upstream's id for the request, and the usage an upstream reported beyond
-- the request's bounds (billed at the bound).
ALTER TABLE request_logs ADD COLUMN requested_model VARCHAR(128) NOT NULL DEFAULT '';
ALTER TABLE request_logs ADD COLUMN upstream_request_id VARCHAR(128) NOT NULL DEFAULT '';
ALTER TABLE request_logs ADD COLUMN implausible_usage VARCHAR(255) NOT NULL DEFAULT '';

-- Model names an admin points at another model: resolved before routing and pricing.
CREATE TABLE model_aliases (
    name       VARCHAR(128) PRIMARY KEY NOT NULL,
    target     VARCHAR(128) NOT NULL,
    created_at BIGINT NOT NULL
);

-- Billing records set aside in the dead-letter file and applied later by
-- `tollgate billing replay`: one row per request, so a record is applied once however often
-- the file is replayed.
CREATE TABLE billing_replays (
    request_id VARCHAR(64) PRIMARY KEY NOT NULL,
    applied_at BIGINT NOT NULL
);

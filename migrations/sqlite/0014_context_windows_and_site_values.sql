-- A model's context window in tokens, as the admin set it with its price (NULL: the shipped
-- list-price table's window for the model, else the option `default_context_tokens`). A
-- request whose prompt the upstream reads beyond what the body says (files, audio, a stored
-- conversation, server-side tools) holds this many prompt tokens and is billed at most this
-- many.
ALTER TABLE prices ADD COLUMN context_tokens BIGINT;

-- Values made once for the whole site and shared by every node on the database, by name (the
-- site id that Stripe idempotency keys and metadata carry). Inserted when absent, never
-- overwritten: a node that races another reads back the value that won.
CREATE TABLE site_values (
    name    VARCHAR(64) PRIMARY KEY,
    value   VARCHAR(255) NOT NULL
);

-- Each Stripe dispute of a top-up as it opened: its amount in the currency's smallest unit.
-- Closing it releases exactly that amount, whatever amount the closing event carries.
CREATE TABLE topup_disputes (
    id          VARCHAR(255) PRIMARY KEY,
    order_id    BIGINT NOT NULL,
    amount      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX topup_disputes_order_idx ON topup_disputes (order_id);

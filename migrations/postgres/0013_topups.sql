-- Stripe top-ups. An order is written before any payment exists: the balance quoted (`quota`,
-- bonus included), the price in the currency's smallest unit (`amount`), and the currency. Its
-- Checkout Session, payment and state follow; every state change is a conditional update on
-- `status`, so a webhook, the reconciliation job and an administrator never apply one twice.
-- `refunded` and `disputed` are what Stripe reported (smallest units); `refund_taken` and
-- `dispute_taken` the quota those took back from the balance so far.
CREATE TABLE topup_orders (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL,
    status          VARCHAR(16) NOT NULL DEFAULT 'pending',
    usd_micros      BIGINT NOT NULL,
    quota           BIGINT NOT NULL,
    bonus           BIGINT NOT NULL DEFAULT 0,
    amount          BIGINT NOT NULL,
    currency        VARCHAR(8) NOT NULL,
    request_key     VARCHAR(64) NOT NULL,
    session_id      VARCHAR(255),
    checkout_url    VARCHAR(2048),
    payment_intent  VARCHAR(255),
    expires_at      BIGINT,
    credited        BIGINT NOT NULL DEFAULT 0,
    refunded        BIGINT NOT NULL DEFAULT 0,
    disputed        BIGINT NOT NULL DEFAULT 0,
    refund_taken    BIGINT NOT NULL DEFAULT 0,
    dispute_taken   BIGINT NOT NULL DEFAULT 0,
    note            VARCHAR(512) NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    paid_at         BIGINT
);
CREATE UNIQUE INDEX topup_orders_request_idx ON topup_orders (user_id, request_key);
CREATE UNIQUE INDEX topup_orders_session_idx ON topup_orders (session_id);
CREATE INDEX topup_orders_intent_idx ON topup_orders (payment_intent);
CREATE INDEX topup_orders_status_idx ON topup_orders (status, created_at);

-- Every Stripe event applied, once: the id is the primary key, inserted in the transaction that
-- applies the event, so a second delivery finds it and changes nothing.
CREATE TABLE stripe_events (
    id          VARCHAR(255) PRIMARY KEY,
    type        VARCHAR(64) NOT NULL,
    order_id    BIGINT,
    outcome     VARCHAR(32) NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX stripe_events_order_idx ON stripe_events (order_id);

-- The balance ledger: every change to a user's balance that is not relay spend (opening
-- balances, grants, admin adjustments; later codes, payments, refunds, invite rewards) is one
-- append-only row, written in the same transaction as the balance change. So for every user:
-- quota = SUM(ledger.amount) - used_quota, which `tollgate ledger check` proves. The
-- idempotency key makes each change apply once however often it is submitted.
CREATE TABLE ledger (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT NOT NULL,
    kind            VARCHAR(32) NOT NULL,
    amount          BIGINT NOT NULL,
    actor           VARCHAR(64) NOT NULL,
    reference       VARCHAR(128) NOT NULL,
    reason          VARCHAR(500) NOT NULL,
    idempotency_key VARCHAR(128) NOT NULL,
    created_at      BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE UNIQUE INDEX ledger_idempotency_key ON ledger (idempotency_key);
CREATE INDEX ledger_user_idx ON ledger (user_id, id);

-- One opening row per existing user, worth their balance plus their spend so far.
INSERT INTO ledger (user_id, kind, amount, actor, reference, reason, idempotency_key, created_at)
SELECT id, 'opening', quota + used_quota, 'system', '', 'balance and spend when the ledger began',
       CONCAT('opening:', id), UNIX_TIMESTAMP() * 1000
FROM users;

-- The audit log: one row per change an administrator, root, the command line or an admin
-- token made, written in the change's own transaction. Append-only: rows are never updated,
-- and deleted only by retention (`audit_retention_days`), oldest first. Each row's `hash` is
-- SHA-256 over the previous row's hash and the row as canonical JSON, so an edit or a deletion
-- in the middle breaks the chain that `tollgate audit verify` walks.
CREATE TABLE audit_log (
    id          BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       VARCHAR(64) NOT NULL,
    auth        VARCHAR(64) NOT NULL,
    ip          VARCHAR(64),
    user_agent  VARCHAR(512),
    action      VARCHAR(64) NOT NULL,
    target      VARCHAR(255) NOT NULL,
    before_json TEXT,
    after_json  TEXT,
    ledger_id   BIGINT,
    prev_hash   VARCHAR(64) NOT NULL,
    hash        VARCHAR(64) NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at);
CREATE INDEX audit_log_action_idx ON audit_log (action, at);
CREATE INDEX audit_log_target_idx ON audit_log (target, at);

-- The chain's head: the last row's id and hash. A write takes it under this row's lock, so
-- audited writes append one after the other. `anchor_hash` is the hash of the last row
-- retention deleted (64 zeros while none was): where `verify` starts.
CREATE TABLE audit_head (
    name         VARCHAR(16) PRIMARY KEY,
    last_id      BIGINT NOT NULL,
    last_hash    VARCHAR(64) NOT NULL,
    anchor_hash  VARCHAR(64) NOT NULL
);
INSERT INTO audit_head (name, last_id, last_hash, anchor_hash) VALUES
    ('chain', 0, '0000000000000000000000000000000000000000000000000000000000000000',
     '0000000000000000000000000000000000000000000000000000000000000000');

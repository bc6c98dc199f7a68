-- Organisations: a shared wallet (`quota`, a balance like a person's, every change other than
-- relay spend a ledger row with `org_id` set), an optional overall budget that starts over each
-- period in the organisation's time zone ('' = the site's), the group its team keys use by
-- default, and members. A team key's spend lands in `used_quota` here, never in the person's.
CREATE TABLE orgs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            VARCHAR(100) NOT NULL,
    slug            VARCHAR(32) NOT NULL,
    group_name      VARCHAR(64) NOT NULL DEFAULT 'default',
    timezone        VARCHAR(64) NOT NULL DEFAULT '',
    budget_period   VARCHAR(16) NOT NULL DEFAULT '',
    budget_quota    BIGINT NOT NULL DEFAULT 0,
    quota           BIGINT NOT NULL DEFAULT 0,
    used_quota      BIGINT NOT NULL DEFAULT 0,
    request_count   BIGINT NOT NULL DEFAULT 0,
    -- The member the owner offered ownership to, until they accept (0: none).
    pending_owner   BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX orgs_slug_idx ON orgs (slug);

-- Who belongs to an organisation: `owner` (exactly one), `admin` or `member`.
CREATE TABLE org_members (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    role        VARCHAR(16) NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX org_members_once_idx ON org_members (org_id, user_id);
CREATE INDEX org_members_user_idx ON org_members (user_id);

-- Departments. `budget_quota` per `budget_period` ('' = no budget); `member_cap_quota` is what
-- each member may spend per period unless their membership sets its own (NULL: no cap);
-- `group_names` lists the organisation's groups the team's keys may use, comma-separated ('' = the
-- organisation's group alone).
CREATE TABLE teams (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id            BIGINT NOT NULL,
    name              VARCHAR(100) NOT NULL,
    budget_period     VARCHAR(16) NOT NULL DEFAULT '',
    budget_quota      BIGINT NOT NULL DEFAULT 0,
    member_cap_quota  BIGINT,
    group_names       VARCHAR(1000) NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX teams_name_idx ON teams (org_id, name);

-- A member's place in a team: `manager` (1 or 0) and their own cap per the team's period
-- (NULL: the team's default).
CREATE TABLE team_members (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id     BIGINT NOT NULL,
    org_id      BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    manager     BIGINT NOT NULL DEFAULT 0,
    cap_quota   BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX team_members_once_idx ON team_members (team_id, user_id);
CREATE INDEX team_members_org_idx ON team_members (org_id, user_id);

-- Invitations into an organisation: by email (a link whose SHA-256 is `token_hash`, accepted by
-- an account whose proven email is `email`) or by username (`username`, accepted by the account
-- of that name; no link, and a name that has no account is kept like any other so the inviter
-- learns nothing). `state` is `pending`, `accepted`, `declined` or `revoked`; an invitation
-- past `expires_at` is expired.
CREATE TABLE org_invitations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       BIGINT NOT NULL,
    token_hash   VARCHAR(64),
    email        VARCHAR(254) NOT NULL DEFAULT '',
    username     VARCHAR(64) NOT NULL DEFAULT '',
    role         VARCHAR(16) NOT NULL,
    team_id      BIGINT NOT NULL DEFAULT 0,
    manager      BIGINT NOT NULL DEFAULT 0,
    invited_by   BIGINT NOT NULL,
    state        VARCHAR(16) NOT NULL DEFAULT 'pending',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    answered_by  BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX org_invitations_token_idx ON org_invitations (token_hash);
CREATE INDEX org_invitations_org_idx ON org_invitations (org_id, state);
CREATE INDEX org_invitations_username_idx ON org_invitations (username, state);

-- What each budget scope spent in each period: a key's budget (`key`), a member's cap in a
-- team (`member`, the team_members row), a team's budget (`team`) and an organisation's
-- (`org`). `window_start` is the period's first moment (UTC ms). The billing writer adds each
-- batch's spend here; every server reads the current period's row.
CREATE TABLE budget_spend (
    scope_kind    VARCHAR(16) NOT NULL,
    scope_id      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    spent         BIGINT NOT NULL,
    PRIMARY KEY (scope_kind, scope_id, window_start)
);

-- Existing key budgets move into the scope rows with the current period's spend.
INSERT INTO budget_spend (scope_kind, scope_id, window_start, spent)
SELECT 'key', id, budget_window, budget_spent FROM tokens
WHERE budget_period <> '' AND budget_window > 0;
ALTER TABLE tokens DROP COLUMN budget_spent;
ALTER TABLE tokens DROP COLUMN budget_window;

-- A team key spends the organisation's wallet through its team (0: a personal key). Fixed at
-- creation.
ALTER TABLE tokens ADD COLUMN org_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN team_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tokens_team_idx ON tokens (team_id);

-- Which organisation and team a request was billed to (0: a personal key). Their index is
-- built online at start-up, like the log's other indexes.
ALTER TABLE request_logs ADD COLUMN org_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE request_logs ADD COLUMN team_id BIGINT NOT NULL DEFAULT 0;

-- An organisation's wallet changes are ledger rows with `org_id` set and `user_id` 0 (the
-- actor says who made them), so a person's ledger never counts them.
ALTER TABLE ledger ADD COLUMN org_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX ledger_org_idx ON ledger (org_id, id);

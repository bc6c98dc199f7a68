-- A key may use another group than its owner's: one the admin made user-selectable. The key's
-- group decides both the channels that serve it and the price ratio. Empty: the owner's group.
ALTER TABLE tokens ADD COLUMN group_name VARCHAR(64) NOT NULL DEFAULT '';

-- The low-balance warning: below this many quota units one email goes out (-1: the site's
-- default, option low_balance_default_usd; 0: never), and `low_balance_warned` remembers it was
-- sent until the balance is back above the line, so each crossing sends one email.
ALTER TABLE users ADD COLUMN low_balance_threshold BIGINT NOT NULL DEFAULT -1;
ALTER TABLE users ADD COLUMN low_balance_warned BIGINT NOT NULL DEFAULT 0;

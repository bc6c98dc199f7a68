-- Card top-ups into an organisation's wallet: the order is still the purchaser's (`user_id`, who
-- paid and sees it), and `org_id` names the wallet it credits (0: the purchaser's own balance).
-- An organisation is not deleted while one of its orders is open (pending or held).
ALTER TABLE topup_orders ADD COLUMN org_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX topup_orders_org_idx ON topup_orders (org_id, status);

-- Which wallet a redeemed code credited (0: the person's own). A code still credits each person
-- once, whichever wallet receives it: the once-per-person index stays on (code_id, user_id).
ALTER TABLE code_redemptions ADD COLUMN org_id BIGINT NOT NULL DEFAULT 0;

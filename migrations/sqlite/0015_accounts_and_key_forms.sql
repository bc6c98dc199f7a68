-- Usernames and email addresses are one person's whatever their case (and, for addresses,
-- their Unicode normalisation): each is compared by a key, lower case in form C. The server
-- fills the keys in for accounts made before, and makes the unique indexes on them once no two
-- accounts share a key (it names those that do, and refuses to start until they are told
-- apart with `tollgate user update`).
ALTER TABLE users ADD COLUMN username_key VARCHAR(32);
ALTER TABLE users ADD COLUMN email_key VARCHAR(255);
-- When the account was deleted (its personal data wiped); a payment that completes later is
-- refunded instead of credited.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
-- The one-time key of the form a key was made with: the same form sent twice makes one key.
ALTER TABLE tokens ADD COLUMN form_key VARCHAR(64);
CREATE UNIQUE INDEX tokens_form_key ON tokens (user_id, form_key);

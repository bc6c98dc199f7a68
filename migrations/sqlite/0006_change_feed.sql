-- The change feed: what each write changed of what running servers hold in memory (a user,
-- a key, a channel, a group, a price, an option, an alias), so every server applies just that
-- instead of reloading everything. `version` is the data version the writing transaction
-- committed as: the transaction bumps meta.data_version, which locks that row until it
-- commits, so versions become visible in order and a reader that has seen version N has
-- seen every version below it. The oldest versions are pruned; a server that falls behind the
-- pruned edge reloads once.
CREATE TABLE change_feed (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    version    BIGINT NOT NULL,
    kind       VARCHAR(16) NOT NULL,
    subject    VARCHAR(200) NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX change_feed_version_idx ON change_feed (version);

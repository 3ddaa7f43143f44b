-- mailkeep store, version 2 (SQLite): access control lists (RFC 4314) and annotations
-- (RFC 5464 METADATA).

-- Rights granted on a mailbox to others. `identifier` is an account address (lower
-- case), `anyone` or `authenticated`; `rights` the RFC 4314 letters granted, in the
-- order "lrswipkxtea". The owner's rights are implicit and never stored here.
CREATE TABLE acl (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    identifier TEXT NOT NULL,
    rights TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, identifier)
) WITHOUT ROWID;
CREATE INDEX acl_by_identifier ON acl (identifier);

-- Annotations of a mailbox (`mailbox_id`) or of the server (NULL). `/shared/...` entries
-- have no `account_id`; `/private/...` entries carry the account they belong to.
-- Entry names are kept in lower case (they are case-insensitive).
CREATE TABLE metadata (
    id INTEGER PRIMARY KEY,
    mailbox_id INTEGER REFERENCES mailboxes (id) ON DELETE CASCADE,
    account_id INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
    entry TEXT NOT NULL,
    value BLOB NOT NULL
);
CREATE UNIQUE INDEX metadata_key
    ON metadata (coalesce(mailbox_id, 0), coalesce(account_id, 0), entry);

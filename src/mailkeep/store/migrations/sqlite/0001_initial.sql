-- mailkeep store, version 1 (SQLite).
-- A mailbox is a log: messages carry the MODSEQ of their last change, expunges are kept
-- in `expunged` with theirs, and mailboxes.highestmodseq is the log's head.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('last_uidvalidity', 0);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    scram_sha256 TEXT,
    quota_bytes INTEGER,
    quota_messages INTEGER,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    used_messages INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);

CREATE TABLE account_settings (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;

CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    expunge_log_start INTEGER NOT NULL DEFAULT 0, -- expunges with MODSEQ <= this were trimmed
    special_use TEXT,
    created INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

-- One row per distinct raw message (content hash): the parse-once data.
-- Search columns are stored casefolded; sort columns as RFC 5256 keys.
CREATE TABLE contents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,       -- never reused: stale index rows stay harmless
    blob TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    refs INTEGER NOT NULL,
    header BLOB NOT NULL,
    envelope BLOB NOT NULL,
    body BLOB NOT NULL,
    bodystructure BLOB NOT NULL,
    structure BLOB NOT NULL,
    sent_date INTEGER,
    sent_tz INTEGER,
    subject TEXT NOT NULL,
    from_ TEXT NOT NULL,
    to_ TEXT NOT NULL,
    cc TEXT NOT NULL,
    bcc TEXT NOT NULL,
    base_subject TEXT NOT NULL,
    sort_from TEXT NOT NULL,
    sort_to TEXT NOT NULL,
    sort_cc TEXT NOT NULL,
    display_from TEXT NOT NULL,
    display_to TEXT NOT NULL,
    message_id TEXT NOT NULL,
    in_reply_to TEXT NOT NULL,
    references_ TEXT NOT NULL,
    preview TEXT NOT NULL
);

-- Full-text index over decoded headers and body text (substring matching via trigrams).
CREATE VIRTUAL TABLE contents_fts USING fts5 (
    headers, body, content = '', tokenize = 'trigram case_sensitive 0'
);

CREATE TABLE messages (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    keywords TEXT NOT NULL,                     -- space-separated, as given
    internaldate INTEGER NOT NULL,              -- seconds since the epoch
    internaldate_tz INTEGER NOT NULL,           -- minutes east of UTC
    savedate INTEGER NOT NULL,
    size INTEGER NOT NULL,
    content_id INTEGER NOT NULL REFERENCES contents (id),
    thread_id INTEGER NOT NULL,
    downloaded INTEGER,                         -- first POP3 RETR, seconds since the epoch
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_by_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_by_content ON messages (content_id);
CREATE INDEX contents_by_message_id ON contents (message_id);

CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    at INTEGER NOT NULL,                        -- when, for trimming the log by age
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_by_modseq ON expunged (mailbox_id, modseq);

-- Contents no message refers to any more: their index rows and blobs are collected later.
CREATE TABLE garbage (
    content_id INTEGER PRIMARY KEY,
    blob TEXT NOT NULL,
    since INTEGER NOT NULL
);

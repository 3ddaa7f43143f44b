-- created_modseq as in PostgreSQL's 0013, so that both stores keep one schema (and
-- rows copy between them as they are). SQLite finds what changed since a MODSEQ through
-- its index on modseq, which costs it little on a change of flags: it updates rows and
-- index entries in place, where PostgreSQL writes new versions of both.
ALTER TABLE messages ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET created_modseq = modseq;

-- Full-text indexing after acknowledging. Building the trigram indexes cost about half of
-- a delivery's time in the writer (1 ms of 2 per message), and more the smaller the
-- commit: FTS5 writes a segment per commit and merges them later. A delivery now stores
-- the text it extracted in fts_pending, in the same transaction as the message, and the
-- writer moves pending text into contents_fts and contents_addr_fts in large batches
-- when it has nothing else to do (store/sqlite.py, "the indexer"). SEARCH BODY/TEXT
-- indexes what is pending before it looks; SEARCH FROM/TO/CC/BCC/SUBJECT tests pending
-- contents directly (store/search.py).
CREATE TABLE fts_pending (
    content_id INTEGER PRIMARY KEY,
    headers TEXT NOT NULL,
    body TEXT NOT NULL
);

-- The address index is filled by the indexer, no longer by a trigger on insert; a
-- contents row still pending was never in it, so deleting one must not touch it.
DROP TRIGGER contents_addr_fts_insert;
DROP TRIGGER contents_addr_fts_delete;
DROP TRIGGER contents_addr_fts_update;
CREATE TRIGGER contents_addr_fts_delete AFTER DELETE ON contents
WHEN NOT EXISTS (SELECT 1 FROM fts_pending WHERE content_id = old.id) BEGIN
    INSERT INTO contents_addr_fts (contents_addr_fts, rowid, subject, from_, to_, cc, bcc)
    VALUES ('delete', old.id, old.subject, old.from_, old.to_, old.cc, old.bcc);
END;
CREATE TRIGGER contents_addr_fts_update
AFTER UPDATE OF subject, from_, to_, cc, bcc ON contents
WHEN NOT EXISTS (SELECT 1 FROM fts_pending WHERE content_id = old.id) BEGIN
    INSERT INTO contents_addr_fts (contents_addr_fts, rowid, subject, from_, to_, cc, bcc)
    VALUES ('delete', old.id, old.subject, old.from_, old.to_, old.cc, old.bcc);
    INSERT INTO contents_addr_fts (rowid, subject, from_, to_, cc, bcc)
    VALUES (new.id, new.subject, new.from_, new.to_, new.cc, new.bcc);
END;

-- SEARCH FROM/TO/CC/BCC/SUBJECT: a trigram index over the stored (casefolded) search
-- columns, so that a needle of three characters or more finds its candidates in the index
-- instead of testing every message of the mailbox (search.py still tests the candidates
-- with instr(): the index only narrows). External content: the text stays in contents,
-- the triggers keep the index in step with it.
CREATE VIRTUAL TABLE contents_addr_fts USING fts5 (
    subject, from_, to_, cc, bcc,
    content = 'contents', content_rowid = 'id', tokenize = 'trigram case_sensitive 0'
);
INSERT INTO contents_addr_fts (contents_addr_fts) VALUES ('rebuild');

CREATE TRIGGER contents_addr_fts_insert AFTER INSERT ON contents BEGIN
    INSERT INTO contents_addr_fts (rowid, subject, from_, to_, cc, bcc)
    VALUES (new.id, new.subject, new.from_, new.to_, new.cc, new.bcc);
END;
CREATE TRIGGER contents_addr_fts_delete AFTER DELETE ON contents BEGIN
    INSERT INTO contents_addr_fts (contents_addr_fts, rowid, subject, from_, to_, cc, bcc)
    VALUES ('delete', old.id, old.subject, old.from_, old.to_, old.cc, old.bcc);
END;
CREATE TRIGGER contents_addr_fts_update
AFTER UPDATE OF subject, from_, to_, cc, bcc ON contents BEGIN
    INSERT INTO contents_addr_fts (contents_addr_fts, rowid, subject, from_, to_, cc, bcc)
    VALUES ('delete', old.id, old.subject, old.from_, old.to_, old.cc, old.bcc);
    INSERT INTO contents_addr_fts (rowid, subject, from_, to_, cc, bcc)
    VALUES (new.id, new.subject, new.from_, new.to_, new.cc, new.bcc);
END;

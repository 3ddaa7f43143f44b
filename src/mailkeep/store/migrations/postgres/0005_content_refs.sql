-- Reference counts move out of contents into a narrow table (see SQLite's 0005: there a
-- change of one column rewrites the whole multi-KB row; here it writes a new row version).
CREATE TABLE content_refs (
    content_id bigint PRIMARY KEY,
    refs bigint NOT NULL
);
INSERT INTO content_refs (content_id, refs) SELECT id, refs FROM contents;
ALTER TABLE contents DROP COLUMN refs;

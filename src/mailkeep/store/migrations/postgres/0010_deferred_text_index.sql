-- Index a message's text after the delivery is acknowledged, as SQLite does since its
-- 0007: maintaining the trigram indexes of a message's headers and body is most of what
-- PostgreSQL spends on a delivery (0.9 of about 1.7 ms). A new message's text is written
-- here, where nothing indexes it; the node that delivered it moves it into contents_text
-- in batches in the first pause between deliveries (PostgresEngine.index_pending), and a
-- SEARCH BODY/TEXT has whatever is pending moved before it looks
-- (Dialect.pending_index). The rows are short-lived: stored uncompressed, they cost no
-- compression twice.
-- (A flag on contents_text with partial indexes would have needed no move, but gave the
-- planner a way to read a whole trigram index instead of searching it.)
CREATE TABLE contents_text_pending (
    content_id bigint PRIMARY KEY REFERENCES contents (id) ON DELETE CASCADE,
    headers text COLLATE "C" NOT NULL,
    body text COLLATE "C" NOT NULL,
    words tsvector
);
ALTER TABLE contents_text_pending
    ALTER COLUMN headers SET STORAGE EXTERNAL,
    ALTER COLUMN body SET STORAGE EXTERNAL,
    ALTER COLUMN words SET STORAGE EXTERNAL;

-- Nothing for PostgreSQL: SQLite's 0007 defers its FTS5 indexing; PostgreSQL's index
-- (contents_text) is written with the message. This keeps the versions of both in step.
SELECT 1;

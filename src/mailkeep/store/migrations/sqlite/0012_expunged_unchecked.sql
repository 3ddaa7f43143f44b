-- Nothing for SQLite: PostgreSQL's 0012 drops the expunge log's foreign key, which it
-- checked with a trigger per row (SQLite's in-process check costs little, and dropping
-- it would rebuild the table). This keeps the versions of both in step.
SELECT 1;

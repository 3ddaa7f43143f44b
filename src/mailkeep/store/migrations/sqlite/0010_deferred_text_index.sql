-- Nothing for SQLite: PostgreSQL's 0010 defers its full-text indexing as SQLite's 0007
-- does. This keeps the versions of both in step.
SELECT 1;

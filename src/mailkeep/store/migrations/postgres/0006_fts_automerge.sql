-- Nothing for PostgreSQL: SQLite's 0006 tunes how its FTS5 index merges segments.
-- This keeps the versions of both in step.
SELECT 1;

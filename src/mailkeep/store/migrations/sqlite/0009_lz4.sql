-- Nothing for SQLite: PostgreSQL's 0009 compresses its large columns with lz4. This
-- keeps the versions of both in step.
SELECT 1;

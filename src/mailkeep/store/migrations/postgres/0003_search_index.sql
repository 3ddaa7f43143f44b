-- Nothing for PostgreSQL: it keeps large values out of line (TOAST), so a scan of the
-- short search columns of contents does not read the header and structure; SQLite's
-- 0003 adds a narrow index for that. This keeps the versions of both in step.
SELECT 1;

-- Nothing for PostgreSQL: SQLite's 0004 adds a trigram index for SEARCH FROM/TO/CC/BCC/
-- SUBJECT; PostgreSQL scans the short search columns (out-of-line TOAST keeps the rest
-- away). This keeps the versions of both in step.
SELECT 1;

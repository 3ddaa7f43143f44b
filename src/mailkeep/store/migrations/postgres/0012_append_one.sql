-- Nothing for PostgreSQL: SQLite's 0012 makes a one-message append one statement, as
-- PostgreSQL's 0011 did. This keeps the versions of both in step.
SELECT 1;

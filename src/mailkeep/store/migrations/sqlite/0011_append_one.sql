-- Nothing for SQLite: PostgreSQL's 0011 makes a one-message append one statement, a
-- round trip there; SQLite runs in-process. This keeps the versions of both in step.
SELECT 1;

-- Nothing for PostgreSQL: it keeps every blob in its tables already (blobs, blob_chunks).
-- SQLite's 0008 moves small blobs from files into its database. This keeps the versions
-- of both in step.
SELECT 1;

-- Small message blobs in the database. A blob kept as a file needs a syncfs (or an fsync
-- of the file and its directory) before the row naming it commits, and creating the file
-- waits on the filesystem journal while a sync runs: over four LMTP connections that was
-- a third of the event loop's time. A blob of up to 128 KiB (store/sqlite.py,
-- _INLINE_BLOB; most mail) is now written by the writer in the transaction that names it,
-- made durable by the same WAL sync. Larger blobs stay files under blobs/, and a blob
-- stored as a file before this migration is read from there.
CREATE TABLE inline_blobs (
    hash TEXT PRIMARY KEY,
    data BLOB NOT NULL
);

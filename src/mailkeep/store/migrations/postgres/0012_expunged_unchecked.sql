-- The expunge log's rows name their mailbox without a foreign key. PostgreSQL checks a
-- foreign key with a trigger per inserted row: logging an EXPUNGE of 500 messages took
-- 3.9 ms, 2.4 of them in those checks (the mailbox's row is locked by the expunge
-- anyway). Nothing relied on the cascade: sql.delete_mailbox_tx deletes a mailbox's log
-- before the mailbox, under the same row lock that every expunge takes first.
ALTER TABLE expunged DROP CONSTRAINT expunged_mailbox_id_fkey;

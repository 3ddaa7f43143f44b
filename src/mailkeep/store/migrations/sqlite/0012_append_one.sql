-- A one-message append as one statement (ops.AppendOne), as PostgreSQL's 0011 does it in
-- a function: an INSERT into this view runs the steps of sql.append_tx for one message in
-- its trigger. In-process there is no round trip to save, but every statement the writer
-- thread runs takes the GIL back afterwards, and while the event loop holds it that waits:
-- over four LMTP connections the writer spent more of each batch waiting to go on than
-- working. Nine statements a delivery became two (this and the read of the results,
-- SqliteEngine._append_one).
--
-- The trigger raises (ABORT undoes this statement only) 'mailkeep: no mailbox',
-- 'mailkeep: no account' or 'mailkeep: over quota' (the quota and usage after the charge
-- are then read by the caller, from which sql.refuse_over_quota words the refusal).
-- referred is a JSON array of the Message-IDs the message refers to (its THREADID);
-- octets, the message when it is not stored yet (it goes to inline_blobs).
CREATE VIEW append_one AS SELECT
    -- the message: where, its blob, whether to check the quota, and its messages row
    NULL AS mailbox_id, NULL AS blob, NULL AS octets, NULL AS check_quota, NULL AS now,
    NULL AS flags, NULL AS keywords, NULL AS internaldate, NULL AS internaldate_tz,
    NULL AS referred,
    -- the contents row: sql.CONTENT_COLUMNS, in that order
    NULL AS size, NULL AS header, NULL AS envelope, NULL AS body, NULL AS bodystructure,
    NULL AS structure, NULL AS sent_date, NULL AS sent_tz, NULL AS subject, NULL AS from_,
    NULL AS to_, NULL AS cc, NULL AS bcc, NULL AS base_subject, NULL AS sort_from,
    NULL AS sort_to, NULL AS sort_cc, NULL AS display_from, NULL AS display_to,
    NULL AS message_id, NULL AS in_reply_to, NULL AS references_, NULL AS preview,
    -- its text, for the indexer
    NULL AS text_headers, NULL AS text_body;

CREATE TRIGGER append_one INSTEAD OF INSERT ON append_one BEGIN
    SELECT RAISE(ABORT, 'mailkeep: no mailbox')
    WHERE NOT EXISTS (SELECT 1 FROM mailboxes WHERE id = new.mailbox_id);
    INSERT OR IGNORE INTO inline_blobs (hash, data)
    SELECT new.blob, new.octets WHERE new.octets IS NOT NULL;

    -- The contents row: one more reference to it, or made now with one.
    UPDATE content_refs SET refs = refs + 1
    WHERE content_id = (SELECT id FROM contents WHERE blob = new.blob);
    INSERT INTO contents (blob, size, header, envelope, body, bodystructure, structure,
        sent_date, sent_tz, subject, from_, to_, cc, bcc, base_subject, sort_from, sort_to,
        sort_cc, display_from, display_to, message_id, in_reply_to, references_, preview)
    SELECT new.blob, new.size, new.header, new.envelope, new.body, new.bodystructure,
        new.structure, new.sent_date, new.sent_tz, new.subject, new.from_, new.to_, new.cc,
        new.bcc, new.base_subject, new.sort_from, new.sort_to, new.sort_cc,
        new.display_from, new.display_to, new.message_id, new.in_reply_to,
        new.references_, new.preview
    WHERE NOT EXISTS (SELECT 1 FROM contents WHERE blob = new.blob);
    -- A contents row without references is the one just made: its text waits for the
    -- indexer (migration 0007).
    INSERT INTO fts_pending (content_id, headers, body)
    SELECT c.id, new.text_headers, new.text_body FROM contents c
    WHERE c.blob = new.blob
    AND NOT EXISTS (SELECT 1 FROM content_refs r WHERE r.content_id = c.id);
    INSERT OR IGNORE INTO content_refs (content_id, refs)
    SELECT id, 1 FROM contents WHERE blob = new.blob;

    UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
    WHERE id = new.mailbox_id;
    UPDATE accounts SET used_bytes = used_bytes + new.size, used_messages = used_messages + 1
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = new.mailbox_id);
    SELECT RAISE(ABORT, 'mailkeep: no account')
    WHERE NOT EXISTS (
        SELECT 1 FROM accounts
        WHERE id = (SELECT account_id FROM mailboxes WHERE id = new.mailbox_id)
    );
    -- As sql.refuse_over_quota, on the usage after the charge.
    SELECT RAISE(ABORT, 'mailkeep: over quota') FROM accounts
    WHERE new.check_quota
    AND id = (SELECT account_id FROM mailboxes WHERE id = new.mailbox_id)
    AND (
        (quota_bytes IS NOT NULL AND new.size > 0 AND used_bytes > quota_bytes)
        OR (quota_messages IS NOT NULL AND used_messages > quota_messages)
    );

    -- RFC 8474 THREADID, as sql._thread_for: from the referred contents (CROSS JOIN
    -- keeps that order), a thread of a message of the same account; else a new one,
    -- named after this content.
    INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internaldate,
        internaldate_tz, savedate, size, content_id, thread_id)
    SELECT new.mailbox_id, b.uidnext - 1, b.highestmodseq, new.flags, new.keywords,
        new.internaldate, new.internaldate_tz, new.now, new.size, c.id, coalesce((
            SELECT m.thread_id FROM contents r
            CROSS JOIN messages m ON m.content_id = r.id
            CROSS JOIN mailboxes o ON o.id = m.mailbox_id
            WHERE r.message_id IN (SELECT value FROM json_each(new.referred))
            AND o.account_id = b.account_id
            LIMIT 1
        ), c.id)
    FROM mailboxes b, contents c
    WHERE b.id = new.mailbox_id AND c.blob = new.blob;
END;

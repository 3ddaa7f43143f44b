-- A change of flags can rewrite a message's row in place (a HOT update: no new index
-- entries). PostgreSQL does that only when no indexed column changes and the row's page
-- has room, and MODSEQ was indexed, for finding what changed since a MODSEQ (CONDSTORE,
-- QRESYNC, a session catching up): a STORE on 5,000 messages wrote 5,000 row versions and
-- 15,000 index entries, 40-48 ms of PostgreSQL's time against 12-13 ms in place.
--
-- What changed since a MODSEQ is now found in two places, both written once and never
-- updated:
--   - created_modseq, a message's MODSEQ when it was added (indexed): the messages added
--     since;
--   - flag_changes, one row per change of flags: its MODSEQ and the UIDs it changed
--     (sql.changed_since). Maintenance merges a mailbox's older rows
--     (sql.compact_flag_log_tx).
-- The messages' pages are filled to half (fillfactor), so a change of every message in a
-- folder still finds room for the new versions beside the old; it takes effect for pages
-- written from now on (a VACUUM FULL rewrites the older ones).
ALTER TABLE messages ADD COLUMN created_modseq bigint;
UPDATE messages SET created_modseq = modseq;
ALTER TABLE messages ALTER COLUMN created_modseq SET NOT NULL;
DROP INDEX messages_by_modseq;
CREATE INDEX messages_by_created_modseq ON messages (mailbox_id, created_modseq);
ALTER TABLE messages SET (fillfactor = 50);

CREATE TABLE flag_changes (
    mailbox_id bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    modseq bigint NOT NULL,
    uids bigint[] NOT NULL,
    PRIMARY KEY (mailbox_id, modseq)
);

-- As in 0011, with created_modseq.
CREATE OR REPLACE FUNCTION mailkeep_append_one(
    p_mailbox bigint, p_blob text, p_check_quota boolean, p_now bigint,
    -- the message's octets in chunks (PostgresEngine.put_blob), or NULL if stored already
    p_chunks bytea[], p_octets bigint, p_chunk_size integer,
    p_flags integer, p_keywords text, p_internaldate bigint, p_internaldate_tz bigint,
    p_referred text[],
    -- the contents row: sql.CONTENT_COLUMNS, in that order
    p_size bigint, p_header bytea, p_envelope bytea, p_body bytea, p_bodystructure bytea,
    p_structure bytea, p_sent_date bigint, p_sent_tz bigint, p_subject text, p_from text,
    p_to text, p_cc text, p_bcc text, p_base_subject text, p_sort_from text, p_sort_to text,
    p_sort_cc text, p_display_from text, p_display_to text, p_message_id text,
    p_in_reply_to text, p_references text, p_preview text,
    -- its text, for the indexer (contents_text_pending, migration 0010)
    p_text_headers text, p_text_body text, p_words text[],
    OUT o_id bigint, OUT o_account_id bigint, OUT o_name text, OUT o_uidvalidity bigint,
    OUT o_uidnext bigint, OUT o_highestmodseq bigint, OUT o_special_use text,
    OUT o_quota_bytes bigint, OUT o_quota_messages bigint, OUT o_used_bytes bigint,
    OUT o_used_messages bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_content bigint;
    v_thread bigint;
BEGIN
    IF p_chunks IS NOT NULL THEN
        INSERT INTO blobs (hash, size, chunk_size) VALUES (p_blob, p_octets, p_chunk_size)
        ON CONFLICT (hash) DO NOTHING;
        IF FOUND THEN
            INSERT INTO blob_chunks (hash, seq, data)
            SELECT p_blob, c.seq - 1, c.data
            FROM unnest(p_chunks) WITH ORDINALITY AS c(data, seq);
        END IF;
    END IF;

    -- Locked, so that an expunge elsewhere cannot drop the last reference meanwhile.
    SELECT id INTO v_content FROM contents WHERE blob = p_blob FOR UPDATE;
    IF FOUND THEN
        UPDATE content_refs SET refs = refs + 1 WHERE content_id = v_content;
    ELSE
        -- The blob's row FOR SHARE, serialised with its collection (as ops.NewContent).
        PERFORM FROM blobs WHERE hash = p_blob FOR SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'message blob % is missing', p_blob USING ERRCODE = 'MK001';
        END IF;
        INSERT INTO contents (blob, size, header, envelope, body, bodystructure, structure,
            sent_date, sent_tz, subject, from_, to_, cc, bcc, base_subject, sort_from,
            sort_to, sort_cc, display_from, display_to, message_id, in_reply_to,
            references_, preview)
        VALUES (p_blob, p_size, p_header, p_envelope, p_body, p_bodystructure, p_structure,
            p_sent_date, p_sent_tz, p_subject, p_from, p_to, p_cc, p_bcc, p_base_subject,
            p_sort_from, p_sort_to, p_sort_cc, p_display_from, p_display_to, p_message_id,
            p_in_reply_to, p_references, p_preview)
        RETURNING id INTO v_content;
        INSERT INTO content_refs (content_id, refs) VALUES (v_content, 1);
        INSERT INTO contents_text_pending (content_id, headers, body, words)
        VALUES (v_content, p_text_headers, p_text_body, array_to_tsvector(p_words));
    END IF;

    -- RFC 8474 THREADID, as sql._thread_for: the referred contents first.
    IF cardinality(p_referred) > 0 THEN
        WITH referred AS MATERIALIZED (
            SELECT id FROM contents WHERE message_id = ANY (p_referred)
        )
        SELECT m.thread_id INTO v_thread FROM referred r
        JOIN messages m ON m.content_id = r.id
        JOIN mailboxes b ON b.id = m.mailbox_id
        WHERE b.account_id = (SELECT account_id FROM mailboxes WHERE id = p_mailbox)
        LIMIT 1;
    END IF;

    UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
    WHERE id = p_mailbox
    RETURNING id, account_id, name, uidvalidity, uidnext, highestmodseq, special_use
    INTO o_id, o_account_id, o_name, o_uidvalidity, o_uidnext, o_highestmodseq,
        o_special_use;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no mailbox %', p_mailbox USING ERRCODE = 'MK002';
    END IF;
    UPDATE accounts SET used_bytes = used_bytes + p_size, used_messages = used_messages + 1
    WHERE id = o_account_id
    RETURNING quota_bytes, quota_messages, used_bytes, used_messages
    INTO o_quota_bytes, o_quota_messages, o_used_bytes, o_used_messages;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no account %', o_account_id USING ERRCODE = 'MK003';
    END IF;
    IF p_check_quota AND (
        (o_quota_bytes IS NOT NULL AND p_size > 0 AND o_used_bytes > o_quota_bytes)
        OR (o_quota_messages IS NOT NULL AND o_used_messages > o_quota_messages)
    ) THEN
        RAISE EXCEPTION 'over quota' USING ERRCODE = 'MK004', DETAIL = json_build_array(
            o_quota_bytes, o_quota_messages, o_used_bytes, o_used_messages)::text;
    END IF;
    INSERT INTO messages (mailbox_id, uid, modseq, created_modseq, flags, keywords,
        internaldate, internaldate_tz, savedate, size, content_id, thread_id)
    VALUES (p_mailbox, o_uidnext - 1, o_highestmodseq, o_highestmodseq, p_flags, p_keywords,
        p_internaldate, p_internaldate_tz, p_now, p_size, v_content,
        coalesce(v_thread, v_content));
END
$$;

-- Stored document rows that do not apply, moved aside.
--
-- The api applies every update to a copy of the document before it stores
-- it, so a member's bytes cannot break a document. A row stored anyway that
-- does not decode or apply (written before that check, a bug, a bad
-- restore) would make every load of the document fail; instead the next
-- load or compaction moves it here, in the transaction that writes the rest
-- of the document as its snapshot, and logs it. Kept for an operator to
-- inspect; nothing reads it back.

CREATE TABLE document_quarantine (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id     uuid        NOT NULL
        CONSTRAINT document_quarantine_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    -- The `document_updates` row it was, or NULL for a snapshot.
    update_id      bigint,
    -- Its bytes, as stored (Yjs update format v1, or not).
    payload        bytea       NOT NULL,
    -- When it was stored (the update's `created_at`, the snapshot's `compacted_at`).
    stored_at      timestamptz NOT NULL,
    -- Why it was moved: what decoding or applying it said.
    reason         text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX document_quarantine_session_idx ON document_quarantine (session_id, id);

-- Replay: who wrote each document update and when, and the code document's
-- history, kept when compaction folds the updates into the snapshot.
--
-- `document_updates.author_id` is the member whose socket sent the update
-- (`created_at` is already there). Compaction copies each code update it
-- merges into `document_history`, in the transaction that deletes it, so the
-- live document stays one snapshot plus a short log (its size limit counts
-- those only) while the history keeps every step. A session's history is
-- bounded by SESSION_HISTORY_MAX_BYTES: past it, its oldest rows are folded
-- into one checkpoint row (their Yjs updates merged), so replay still ends
-- at the exact text but the earliest typing is replayed in one step. The
-- notes are never kept here. `GET /api/sessions/{id}/timeline` reads it;
-- SESSION_HISTORY_RETENTION after a session ends, its history is deleted.

ALTER TABLE document_updates ADD COLUMN author_id uuid
    CONSTRAINT document_updates_author_fk REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE document_history (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid        NOT NULL
        CONSTRAINT document_history_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    -- Replay order: the `document_updates` id of the (last) update held;
    -- 0 for a snapshot kept from before history existed.
    seq        bigint      NOT NULL,
    -- NULL: several authors (a checkpoint), or a deleted account.
    author_id  uuid
        CONSTRAINT document_history_author_fk REFERENCES users (id) ON DELETE SET NULL,
    -- One Yjs update (format v1).
    payload    bytea       NOT NULL,
    -- When the (last) update held was stored.
    created_at timestamptz NOT NULL,
    -- How many updates it holds: 1 as its author sent it, more for a
    -- checkpoint, 0 for a snapshot kept from before history existed.
    updates    integer     NOT NULL DEFAULT 1
);

CREATE INDEX document_history_session_idx ON document_history (session_id, created_at, seq);

-- Sessions compacted before this migration: their snapshot is where replay starts.
INSERT INTO document_history (session_id, seq, payload, created_at, updates)
SELECT session_id, 0, snapshot, compacted_at, 0 FROM documents WHERE kind = 'code';

-- When the retention sweeper deleted the session's history (and role changes).
ALTER TABLE interview_sessions ADD COLUMN history_purged_at timestamptz;
CREATE INDEX interview_sessions_history_idx ON interview_sessions (ended_at)
    WHERE status = 'ended' AND history_purged_at IS NULL;

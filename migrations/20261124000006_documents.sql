-- The shared editor's Yjs document (SPEC §6, `GET /api/sessions/{id}/doc`).
--
-- A document is its snapshot merged with every update appended since. Yjs
-- updates commute and are idempotent, so the rows can be applied in any
-- order, any number of times. The api appends each update a client sends
-- before it relays it (nothing is acknowledged that is not stored), and
-- compacts — snapshot + the updates it read, in one transaction, deleting
-- exactly those rows — periodically and when the last socket of a replica
-- leaves. `interview_sessions.code` mirrors the text as of the last
-- compaction; `GET /api/sessions/{id}` reads the document itself.

CREATE TABLE documents (
    session_id   uuid        PRIMARY KEY
        CONSTRAINT documents_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    -- Yjs update format v1 of the whole document.
    snapshot     bytea       NOT NULL,
    compacted_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE document_updates (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid        NOT NULL
        CONSTRAINT document_updates_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    -- One Yjs update (format v1) as a client sent it.
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX document_updates_session_idx ON document_updates (session_id, id);

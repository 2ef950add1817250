-- Two documents per session: `code` (the shared editor, mirrored into
-- `interview_sessions.code`, which every member reads) and `notes` (the
-- interviewer-only notes, `GET /api/sessions/{id}/notes`, never mirrored).
--
-- Every stored part of a document — its snapshot, its appended updates and
-- what was quarantined — is keyed by (session, kind); rows from before this
-- migration are the code document's.

ALTER TABLE documents ADD COLUMN kind text NOT NULL DEFAULT 'code',
    ADD CONSTRAINT documents_kind_valid CHECK (kind IN ('code', 'notes'));
ALTER TABLE documents DROP CONSTRAINT documents_pkey,
    ADD CONSTRAINT documents_pkey PRIMARY KEY (session_id, kind);

ALTER TABLE document_updates ADD COLUMN kind text NOT NULL DEFAULT 'code',
    ADD CONSTRAINT document_updates_kind_valid CHECK (kind IN ('code', 'notes'));
DROP INDEX document_updates_session_idx;
CREATE INDEX document_updates_session_idx ON document_updates (session_id, kind, id);

ALTER TABLE document_quarantine ADD COLUMN kind text NOT NULL DEFAULT 'code',
    ADD CONSTRAINT document_quarantine_kind_valid CHECK (kind IN ('code', 'notes'));

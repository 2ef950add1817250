-- Room chat (SPEC §6): persisted, so the last messages are sent to whoever
-- joins, on any api replica.

CREATE TABLE chat_messages (
    id         uuid        PRIMARY KEY,
    session_id uuid        NOT NULL
        CONSTRAINT chat_messages_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL
        CONSTRAINT chat_messages_user_fk REFERENCES users (id) ON DELETE CASCADE,
    text       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT chat_messages_text_length CHECK (char_length(text) BETWEEN 1 AND 2000)
);

CREATE INDEX chat_messages_session_created_idx ON chat_messages (session_id, created_at DESC, id DESC);

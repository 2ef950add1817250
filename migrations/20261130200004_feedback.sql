-- Feedback after an interview: the interviewer (or the host) about one
-- candidate of an ended session. One row per (session, author, candidate),
-- replaced by later edits while the edit window (`FEEDBACK_EDIT_WINDOW`,
-- counted from the session's end) is open; frozen after it.
--
-- The rubric is four marks from 1 (weak) to 4 (strong) and an overall
-- hire-style signal. The candidate reads the feedback about themselves only.

CREATE TABLE session_feedback (
    id              uuid        PRIMARY KEY,
    session_id      uuid        NOT NULL
        CONSTRAINT session_feedback_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    author_id       uuid        NOT NULL
        CONSTRAINT session_feedback_author_fk REFERENCES users (id) ON DELETE CASCADE,
    candidate_id    uuid        NOT NULL
        CONSTRAINT session_feedback_candidate_fk REFERENCES users (id) ON DELETE CASCADE,
    problem_solving smallint    NOT NULL,
    communication   smallint    NOT NULL,
    code_quality    smallint    NOT NULL,
    testing         smallint    NOT NULL,
    -- `strong_no`, `no`, `yes`, `strong_yes`.
    signal          text        NOT NULL,
    text            text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT session_feedback_one_per_pair UNIQUE (session_id, author_id, candidate_id),
    CONSTRAINT session_feedback_not_self CHECK (author_id <> candidate_id),
    CONSTRAINT session_feedback_marks_range CHECK (
        problem_solving BETWEEN 1 AND 4 AND communication BETWEEN 1 AND 4
        AND code_quality BETWEEN 1 AND 4 AND testing BETWEEN 1 AND 4),
    CONSTRAINT session_feedback_signal_valid CHECK (signal IN ('strong_no', 'no', 'yes', 'strong_yes')),
    CONSTRAINT session_feedback_text_length CHECK (char_length(text) <= 10000)
);

-- "My feedback over time", newest first.
CREATE INDEX session_feedback_candidate_idx ON session_feedback (candidate_id, created_at DESC, id DESC);

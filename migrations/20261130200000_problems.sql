-- Interview problems: a statement to solve in a session, with tests.
--
-- `sample_tests` are shown to everyone in a session that uses the problem;
-- `hidden_tests` only to the problem's author and to the session's
-- interviewer (a submission runs the shared code against them). Both are
-- JSON arrays of `{"stdin": "...", "expectedOutput": "..."}`, the shape a
-- run's `tests` column takes, so a submission copies them as they are.
-- `starter_code` maps a session language (`python`, `cpp`, …) to the text
-- put into an empty shared document when the problem is attached.
--
-- `author_id` is NULL for the problems the platform ships (nobody edits
-- those). Deleting a problem only sets `deleted_at`: it leaves the catalogue,
-- but the sessions that used it keep reading it (their review and feedback
-- refer to it).

CREATE TABLE problems (
    id                      uuid        PRIMARY KEY,
    author_id               uuid
        CONSTRAINT problems_author_fk REFERENCES users (id) ON DELETE CASCADE,
    title                   text        NOT NULL,
    -- Markdown.
    statement               text        NOT NULL,
    difficulty              text        NOT NULL,
    tags                    text[]      NOT NULL DEFAULT '{}',
    -- A suggested duration for the interview, in minutes.
    time_suggestion_minutes integer,
    starter_code            jsonb       NOT NULL DEFAULT '{}',
    sample_tests            jsonb       NOT NULL DEFAULT '[]',
    hidden_tests            jsonb       NOT NULL DEFAULT '[]',
    -- `private` (the author), `friends` (the author's friends too), `public`.
    visibility              text        NOT NULL DEFAULT 'private',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz,

    CONSTRAINT problems_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT problems_difficulty_valid CHECK (difficulty IN ('easy', 'medium', 'hard')),
    CONSTRAINT problems_visibility_valid CHECK (visibility IN ('private', 'friends', 'public')),
    CONSTRAINT problems_time_suggestion_range CHECK (time_suggestion_minutes BETWEEN 1 AND 600),
    CONSTRAINT problems_tests_are_arrays CHECK (
        jsonb_typeof(sample_tests) = 'array' AND jsonb_typeof(hidden_tests) = 'array'),
    CONSTRAINT problems_starter_code_object CHECK (jsonb_typeof(starter_code) = 'object')
);

-- The catalogue, newest first (the listing's order and cursor).
CREATE INDEX problems_listing_idx ON problems (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX problems_author_idx ON problems (author_id, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX problems_tags_idx ON problems USING gin (tags);

-- Friends (SPEC §4) and interview sessions (SPEC §5).

-- Pending friend requests only: accepting turns a request into a friendship
-- row, declining or cancelling deletes it (the sender may ask again later).
CREATE TABLE friend_requests (
    id          uuid        PRIMARY KEY,
    sender_id   uuid        NOT NULL
        CONSTRAINT friend_requests_sender_fk REFERENCES users (id) ON DELETE CASCADE,
    receiver_id uuid        NOT NULL
        CONSTRAINT friend_requests_receiver_fk REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT friend_requests_not_self CHECK (sender_id <> receiver_id)
);

-- At most one pending request per unordered pair, whichever way it goes.
CREATE UNIQUE INDEX friend_requests_pair_key
    ON friend_requests (LEAST(sender_id, receiver_id), GREATEST(sender_id, receiver_id));
CREATE INDEX friend_requests_receiver_idx ON friend_requests (receiver_id, created_at DESC);
CREATE INDEX friend_requests_sender_idx ON friend_requests (sender_id, created_at DESC);

-- One row per friendship, stored with the smaller id first, so the primary
-- key is the unordered pair and self-friendship is impossible.
CREATE TABLE friendships (
    user_a     uuid        NOT NULL
        CONSTRAINT friendships_user_a_fk REFERENCES users (id) ON DELETE CASCADE,
    user_b     uuid        NOT NULL
        CONSTRAINT friendships_user_b_fk REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT friendships_pkey PRIMARY KEY (user_a, user_b),
    CONSTRAINT friendships_ordered_pair CHECK (user_a < user_b)
);

CREATE INDEX friendships_user_b_idx ON friendships (user_b);

-- An interview session (a room). `scheduled` → `live` → `ended`; an ended
-- session is read-only but stays readable by its members.
CREATE TABLE interview_sessions (
    id               uuid        PRIMARY KEY,
    host_id          uuid        NOT NULL
        CONSTRAINT interview_sessions_host_fk REFERENCES users (id) ON DELETE CASCADE,
    title            text        NOT NULL,
    language         text        NOT NULL,
    status           text        NOT NULL DEFAULT 'scheduled',
    scheduled_for    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    ended_at         timestamptz,
    -- Bumped by every change; a live session idle for SESSION_IDLE_TIMEOUT ends.
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    -- The shared editor's text (the Yjs document lands in a later migration).
    code             text        NOT NULL DEFAULT '',

    CONSTRAINT interview_sessions_status_valid CHECK (status IN ('scheduled', 'live', 'ended')),
    CONSTRAINT interview_sessions_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT interview_sessions_lifecycle CHECK (
        (status = 'scheduled' AND started_at IS NULL AND ended_at IS NULL)
        OR (status = 'live' AND started_at IS NOT NULL AND ended_at IS NULL)
        OR (status = 'ended' AND ended_at IS NOT NULL)
    )
);

CREATE INDEX interview_sessions_live_activity_idx
    ON interview_sessions (last_activity_at) WHERE status = 'live';

CREATE TABLE session_members (
    session_id uuid        NOT NULL
        CONSTRAINT session_members_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL
        CONSTRAINT session_members_user_fk REFERENCES users (id) ON DELETE CASCADE,
    role       text        NOT NULL,
    joined_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT session_members_pkey PRIMARY KEY (session_id, user_id),
    CONSTRAINT session_members_role_valid CHECK (role IN ('interviewer', 'candidate'))
);

-- One interviewer per session: assigning the role to someone else moves the
-- previous interviewer to candidate (a swap is one call).
CREATE UNIQUE INDEX session_members_one_interviewer
    ON session_members (session_id) WHERE role = 'interviewer';
CREATE INDEX session_members_user_idx ON session_members (user_id);

CREATE TABLE session_invites (
    id           uuid        PRIMARY KEY,
    session_id   uuid        NOT NULL
        CONSTRAINT session_invites_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    invitee_id   uuid        NOT NULL
        CONSTRAINT session_invites_invitee_fk REFERENCES users (id) ON DELETE CASCADE,
    inviter_id   uuid        NOT NULL
        CONSTRAINT session_invites_inviter_fk REFERENCES users (id) ON DELETE CASCADE,
    status       text        NOT NULL DEFAULT 'pending',
    created_at   timestamptz NOT NULL DEFAULT now(),
    responded_at timestamptz,

    CONSTRAINT session_invites_status_valid
        CHECK (status IN ('pending', 'accepted', 'declined', 'revoked'))
);

-- At most one pending invite per person per session.
CREATE UNIQUE INDEX session_invites_pending_key
    ON session_invites (session_id, invitee_id) WHERE status = 'pending';
CREATE INDEX session_invites_invitee_idx ON session_invites (invitee_id, created_at DESC);

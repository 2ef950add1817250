-- Role changes of session members, for the session's timeline: every
-- member's arrival (with their role), role change and departure, written by
-- a trigger so every path that changes `session_members` (create, invite
-- accept, roles, leave) is recorded. Deleted with the session's history
-- after SESSION_HISTORY_RETENTION.

CREATE TABLE session_role_changes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid        NOT NULL
        CONSTRAINT session_role_changes_session_fk REFERENCES interview_sessions (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL
        CONSTRAINT session_role_changes_user_fk REFERENCES users (id) ON DELETE CASCADE,
    -- The role taken, or `left` when the member left or was removed.
    role       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT session_role_changes_role_valid CHECK (role IN ('interviewer', 'candidate', 'left'))
);

CREATE INDEX session_role_changes_session_idx ON session_role_changes (session_id, created_at, id);

CREATE FUNCTION session_members_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO session_role_changes (session_id, user_id, role)
        VALUES (NEW.session_id, NEW.user_id, NEW.role);
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.role IS DISTINCT FROM OLD.role THEN
            INSERT INTO session_role_changes (session_id, user_id, role)
            VALUES (NEW.session_id, NEW.user_id, NEW.role);
        END IF;
    -- A member removed by the deletion of their session or account is not a departure.
    ELSIF EXISTS (SELECT 1 FROM interview_sessions WHERE id = OLD.session_id)
          AND EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) THEN
        INSERT INTO session_role_changes (session_id, user_id, role)
        VALUES (OLD.session_id, OLD.user_id, 'left');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER session_members_history
    AFTER INSERT OR UPDATE OF role OR DELETE ON session_members
    FOR EACH ROW EXECUTE FUNCTION session_members_history();

-- Members from before this migration: their current role, as of joining.
INSERT INTO session_role_changes (session_id, user_id, role, created_at)
SELECT session_id, user_id, role, joined_at FROM session_members;

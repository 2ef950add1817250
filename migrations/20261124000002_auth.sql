-- Authentication: roles, logins (refresh-token families) and refresh tokens.

-- `admin` unlocks the operator endpoints (queue monitoring). Admins are made by
-- the ADMIN_EMAILS setting (see README), never through the public API.
ALTER TABLE users
    ADD COLUMN role text NOT NULL DEFAULT 'user',
    ADD CONSTRAINT users_role_valid CHECK (role IN ('user', 'admin'));

-- One row per successful login: the "family" every refresh token issued from
-- that login belongs to. Access tokens carry its id (`sid`), so revoking the
-- login ends its access tokens too, not only its refresh tokens.
CREATE TABLE logins (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL
        CONSTRAINT logins_user_fk REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    -- logout | logout_all | password_changed | refresh_token_reused
    revoked_reason text,

    CONSTRAINT logins_revocation_complete
        CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

CREATE INDEX logins_user_active_idx ON logins (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens, stored only as SHA-256 hashes of the signed token. A token
-- is good once: exchanging it sets `used_at`; presenting it again is reuse and
-- revokes the whole login.
CREATE TABLE refresh_tokens (
    -- The token's `jti`.
    id         uuid        PRIMARY KEY,
    login_id   uuid        NOT NULL
        CONSTRAINT refresh_tokens_login_fk REFERENCES logins (id) ON DELETE CASCADE,
    token_hash bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,

    CONSTRAINT refresh_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_hash_length CHECK (octet_length(token_hash) = 32)
);

CREATE INDEX refresh_tokens_login_idx ON refresh_tokens (login_id);

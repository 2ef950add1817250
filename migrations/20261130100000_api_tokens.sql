-- Personal API tokens: long-lived credentials for programs (REST clients,
-- the Judge0 and Piston compatibility doors). The token itself is shown once
-- at creation; only its SHA-256 is stored (it is 192 random bits, so a fast
-- hash is enough: there is nothing to brute-force). `prefix` is its first
-- characters, shown in listings so a user can tell tokens apart.
CREATE TABLE api_tokens (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL
        CONSTRAINT api_tokens_user_fk REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    token_hash   bytea       NOT NULL CONSTRAINT api_tokens_hash_unique UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- NULL: does not expire.
    expires_at   timestamptz,
    -- Updated at most once a minute per token (not on every request).
    last_used_at timestamptz,
    -- Set by DELETE /api/tokens/{id}; a revoked token is refused at once.
    revoked_at   timestamptz
);

CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, created_at DESC);

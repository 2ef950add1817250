-- Users: the seed's User model (id, name, email, passwordHash, createdAt).
--
-- Emails are stored normalised (trimmed, lower-cased) by the api; the CHECK
-- makes that an invariant, so the plain UNIQUE constraint is case-insensitive
-- in effect and the api can map a violation of `users_email_key` to 409.

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL,
    email         text        NOT NULL,
    -- PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$…`. Never sent to clients.
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email))),
    CONSTRAINT users_name_length CHECK (char_length(name) BETWEEN 1 AND 100)
);

COMMENT ON TABLE users IS 'Accounts. Source of truth for identity; tokens reference users.id.';
COMMENT ON CONSTRAINT users_email_key ON users IS 'One account per email (normalised, so case-insensitive).';

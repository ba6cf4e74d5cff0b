-- +goose Up
-- A user's TOTP factor: pending until a correct code activates it. secret is sealed with the
-- secret key (enc:v1:...) when one is set. last_step is the last time step a code was
-- accepted for: a code for it or an earlier step is refused, which is the replay protection.
CREATE TABLE totp_factors (
    id         INTEGER     PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT        NOT NULL,
    active     BOOLEAN     NOT NULL DEFAULT FALSE,
    last_step  INTEGER     NOT NULL DEFAULT 0,
    created_at DATETIME    NOT NULL
);
-- One TOTP factor per user, pending or active.
CREATE UNIQUE INDEX totp_factors_user ON totp_factors (user_id);

-- A login whose password was right, waiting for the second factor. id_hash is the SHA-256 of
-- the challenge token the client holds (a database read does not yield a usable challenge);
-- password_hash binds it to the password checked: a password change in between voids it.
CREATE TABLE mfa_challenges (
    id_hash       TEXT        PRIMARY KEY,
    user_id       INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT        NOT NULL,
    user_agent    TEXT        NOT NULL DEFAULT '',
    ip            TEXT        NOT NULL DEFAULT '',
    created_at    DATETIME    NOT NULL,
    expires_at    DATETIME    NOT NULL
);
CREATE INDEX mfa_challenges_expires ON mfa_challenges (expires_at);

-- Recovery codes, stored hashed; used_at is set once, when a code is used.
CREATE TABLE recovery_codes (
    user_id    INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT        NOT NULL,
    created_at DATETIME    NOT NULL,
    used_at    DATETIME,
    PRIMARY KEY (user_id, code_hash)
);

-- How each session's user authenticated (RFC 8176 amr values, space-separated): its tokens
-- carry it, and acr follows from it. Sessions from before are password logins.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- +goose Down
ALTER TABLE sessions DROP COLUMN amr;
DROP TABLE recovery_codes;
DROP TABLE mfa_challenges;
DROP TABLE totp_factors;

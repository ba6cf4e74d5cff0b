-- +goose Up
-- Every refresh token issued, so that rotation can retire it and a retired one presented
-- again (reuse) can be told apart from an unknown one.
CREATE TABLE refresh_tokens (
    id          TEXT     PRIMARY KEY,
    session_id  TEXT     NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    access_id   TEXT     NOT NULL,
    issued_at   DATETIME NOT NULL,
    expires_at  DATETIME NOT NULL,
    used_at     DATETIME,
    replaced_by TEXT
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- Failed logins, per account (the lowercased username, known or not) and per client IP.
CREATE TABLE login_failures (
    id    INTEGER  PRIMARY KEY AUTOINCREMENT,
    scope TEXT     NOT NULL,
    key   TEXT     NOT NULL,
    at    DATETIME NOT NULL
);
CREATE INDEX login_failures_scope_key_at_idx ON login_failures (scope, key, at);

CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- +goose Down
DROP INDEX sessions_expires_at_idx;
DROP TABLE login_failures;
DROP TABLE refresh_tokens;

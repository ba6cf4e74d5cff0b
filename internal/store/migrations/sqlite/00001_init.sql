-- +goose Up
CREATE TABLE users (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    username      TEXT     NOT NULL,
    username_key  TEXT     NOT NULL,
    first_name    TEXT     NOT NULL DEFAULT '',
    last_name     TEXT     NOT NULL DEFAULT '',
    email         TEXT     NOT NULL DEFAULT '',
    password_hash TEXT     NOT NULL DEFAULT '',
    is_active     BOOLEAN  NOT NULL DEFAULT 1,
    is_staff      BOOLEAN  NOT NULL DEFAULT 0,
    is_superuser  BOOLEAN  NOT NULL DEFAULT 0,
    last_login    DATETIME,
    date_joined   DATETIME NOT NULL
);
CREATE UNIQUE INDEX users_username_key_idx ON users (username_key);

CREATE TABLE sessions (
    id           TEXT     PRIMARY KEY,
    user_id      INTEGER  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   DATETIME NOT NULL,
    last_used_at DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL,
    revoked_at   DATETIME,
    user_agent   TEXT     NOT NULL DEFAULT '',
    ip           TEXT     NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE signing_keys (
    id         TEXT     PRIMARY KEY,
    algorithm  TEXT     NOT NULL,
    private    BLOB     NOT NULL,
    created_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE sessions;
DROP TABLE users;

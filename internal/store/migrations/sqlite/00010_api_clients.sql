-- +goose Up
-- The registry of API clients (resource servers and services): only SHA-256 hashes of their
-- secrets are kept. A rotation keeps the previous hash until previous_expires_at (the overlap).
-- A client token names the secret it was issued with (a prefix of its hash starts its jti).
CREATE TABLE api_clients (
    id                   TEXT     PRIMARY KEY,
    name                 TEXT     NOT NULL,
    scopes               TEXT     NOT NULL DEFAULT '',
    created_at           DATETIME NOT NULL,
    created_by           INTEGER,
    updated_at           DATETIME NOT NULL,
    last_used_at         DATETIME,
    disabled             BOOLEAN  NOT NULL DEFAULT FALSE,
    secret_hash          BLOB     NOT NULL,
    secret_set_at        DATETIME NOT NULL,
    previous_secret_hash BLOB,
    previous_expires_at  DATETIME
);
-- The client an audit event concerns.
ALTER TABLE audit_events ADD COLUMN client_id TEXT;

-- +goose Down
ALTER TABLE audit_events DROP COLUMN client_id;
DROP TABLE api_clients;

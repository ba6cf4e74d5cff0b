-- +goose Up
-- The registry of API clients (resource servers and services): only SHA-256 hashes of their
-- secrets are kept. A rotation keeps the previous hash until previous_expires_at (the overlap).
-- A client token names the secret it was issued with (a prefix of its hash starts its jti).
CREATE TABLE api_clients (
    id                   TEXT        PRIMARY KEY,
    name                 TEXT        NOT NULL,
    scopes               TEXT        NOT NULL DEFAULT '',
    created_at           TIMESTAMPTZ NOT NULL,
    created_by           BIGINT,
    updated_at           TIMESTAMPTZ NOT NULL,
    last_used_at         TIMESTAMPTZ,
    disabled             BOOLEAN     NOT NULL DEFAULT FALSE,
    secret_hash          BYTEA       NOT NULL,
    secret_set_at        TIMESTAMPTZ NOT NULL,
    previous_secret_hash BYTEA,
    previous_expires_at  TIMESTAMPTZ
);
-- The client an audit event concerns.
ALTER TABLE audit_events ADD COLUMN client_id TEXT;

-- +goose Down
ALTER TABLE audit_events DROP COLUMN client_id;
DROP TABLE api_clients;

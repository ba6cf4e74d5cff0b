-- +goose Up
-- Shared Signals (SSF): the receivers' streams, the security events written in the
-- transaction of the change they describe (only while a stream wants them), and one queue row
-- per event and stream until the receiver acknowledges it (poll) or accepts it (push).
-- A second purpose for signing keys: the key that signs SETs is never a token key.
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'token';
-- One SET key: instances creating it at once cannot each sign with their own.
CREATE UNIQUE INDEX signing_keys_one_set ON signing_keys (purpose) WHERE purpose = 'set';

CREATE TABLE ssf_streams (
    id                   TEXT        PRIMARY KEY,
    client_id            TEXT        NOT NULL,
    audience             TEXT        NOT NULL, -- JSON array of strings
    events_requested     TEXT        NOT NULL, -- JSON array of event type URIs
    events_delivered     TEXT        NOT NULL, -- JSON array of event type URIs
    delivery_method      TEXT        NOT NULL,
    endpoint_url         TEXT        NOT NULL DEFAULT '',
    authorization_header TEXT        NOT NULL DEFAULT '',
    format               TEXT        NOT NULL,
    description          TEXT        NOT NULL DEFAULT '',
    status               TEXT        NOT NULL,
    reason               TEXT        NOT NULL DEFAULT '',
    created_at           DATETIME    NOT NULL,
    updated_at           DATETIME    NOT NULL
);
CREATE INDEX ssf_streams_client ON ssf_streams (client_id);

CREATE TABLE security_events (
    id         INTEGER     PRIMARY KEY AUTOINCREMENT,
    jti        TEXT        NOT NULL UNIQUE,
    type       TEXT        NOT NULL,
    txn        TEXT        NOT NULL,
    user_id    INTEGER     NOT NULL DEFAULT 0,
    session_id TEXT        NOT NULL DEFAULT '',
    email      TEXT        NOT NULL DEFAULT '',
    cause      TEXT        NOT NULL DEFAULT '',
    actor_id   INTEGER     NOT NULL DEFAULT 0,
    detail     TEXT        NOT NULL DEFAULT '',
    at         DATETIME    NOT NULL
);
CREATE INDEX security_events_at ON security_events (at);

CREATE TABLE ssf_queue (
    stream_id       TEXT        NOT NULL REFERENCES ssf_streams (id) ON DELETE CASCADE,
    event_id        INTEGER     NOT NULL REFERENCES security_events (id) ON DELETE CASCADE,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at DATETIME,
    lease_owner     TEXT,
    lease_until     DATETIME,
    PRIMARY KEY (stream_id, event_id)
);
CREATE INDEX ssf_queue_event ON ssf_queue (event_id);

-- +goose Down
DROP TABLE ssf_queue;
DROP TABLE security_events;
DROP TABLE ssf_streams;
DROP INDEX signing_keys_one_set;
ALTER TABLE signing_keys DROP COLUMN purpose;

-- +goose Up
-- The audit log: one row per security event, written in the transaction of the change it
-- describes. No foreign keys: the events of a deleted user or session must stay. AUTOINCREMENT
-- so that ids of pruned events are never reused.
CREATE TABLE audit_events (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    at         DATETIME NOT NULL,
    action     TEXT     NOT NULL CHECK (action <> ''),
    outcome    TEXT     NOT NULL,
    actor_id   INTEGER,
    target_id  INTEGER,
    session_id TEXT,
    ip         TEXT     NOT NULL DEFAULT '',
    user_agent TEXT     NOT NULL DEFAULT '',
    key_id     TEXT,
    fields     TEXT     NOT NULL DEFAULT ''
);
-- Newest first (at, id), over a time range, and the retention prune.
CREATE INDEX audit_events_at ON audit_events (at, id);
-- The filters, each with the same order.
CREATE INDEX audit_events_actor ON audit_events (actor_id, at, id);
CREATE INDEX audit_events_target ON audit_events (target_id, at, id);
CREATE INDEX audit_events_action ON audit_events (action, at, id);

-- +goose Down
DROP TABLE audit_events;

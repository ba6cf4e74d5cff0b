-- +goose Up
-- Repeated refusals (a login or a password change throttled) are counted in one row per
-- aggregate_key (action, IP, the account when its limit refused, and the throttle's window)
-- instead of a row each: at is the last one's time, first_at the first one's, count how many.
-- Other events have count 1, no first_at (it is at) and no aggregate_key.
ALTER TABLE audit_events ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN first_at TIMESTAMPTZ;
ALTER TABLE audit_events ADD COLUMN aggregate_key TEXT;
CREATE UNIQUE INDEX audit_events_aggregate ON audit_events (aggregate_key);

-- +goose Down
DROP INDEX audit_events_aggregate;
ALTER TABLE audit_events DROP COLUMN aggregate_key;
ALTER TABLE audit_events DROP COLUMN first_at;
ALTER TABLE audit_events DROP COLUMN count;

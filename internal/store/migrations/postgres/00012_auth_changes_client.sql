-- +goose Up
-- A change-log row may name an API client instead of a user: a client's update, rotation or
-- deletion, so that every instance drops the client it cached. Such a row has user_id 0,
-- which names no user: an instance of the previous release reading it drops nobody's tokens
-- rather than failing to read the log.
ALTER TABLE auth_changes ADD COLUMN client_id TEXT;

-- +goose Down
ALTER TABLE auth_changes DROP COLUMN client_id;

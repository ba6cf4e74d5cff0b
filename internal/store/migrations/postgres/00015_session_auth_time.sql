-- +goose Up
-- When the session's user last authenticated (its tokens' auth_time): a re-authentication
-- (step-up) moves it, and its amr, without a new session. NULL is the session's created_at.
ALTER TABLE sessions ADD COLUMN auth_time TIMESTAMPTZ;

-- +goose Down
ALTER TABLE sessions DROP COLUMN auth_time;

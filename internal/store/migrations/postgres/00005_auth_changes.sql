-- +goose Up
-- The change log of authentication state: every transaction that revokes a session or changes
-- a user (deactivation, demotion, password, deletion, login) adds a row as its last statement,
-- so that every instance sharing the database drops what it cached about the user. Rows are
-- useless after a minute and are pruned. No foreign key: a deleted user's row must stay.
CREATE TABLE auth_changes (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL,
    session_id TEXT,
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX auth_changes_at ON auth_changes (at);

-- +goose Down
DROP TABLE auth_changes;

-- +goose Up
-- The client IP (its throttling key) of each failed login, so that an IP the account has
-- logged in from before counts only its own failures against the account. '' for failures
-- recorded before this column: they count for unknown IPs only.
ALTER TABLE login_failures ADD COLUMN ip TEXT NOT NULL DEFAULT '';

-- The IPs (throttling keys) each user has logged in from successfully.
CREATE TABLE login_ips (
    user_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip            TEXT        NOT NULL,
    last_login_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, ip)
);

-- +goose Down
DROP TABLE login_ips;
ALTER TABLE login_failures DROP COLUMN ip;

-- +goose Up
-- Whether the user's email address is verified, and since when: set by a confirmed
-- verification mail, cleared by every change of the address.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN email_verified_at DATETIME;
-- A self-service change of address waiting for the new address to confirm it ('' for none):
-- the address in use stays email until then. A newer request replaces it.
ALTER TABLE users ADD COLUMN pending_email TEXT NOT NULL DEFAULT '';
-- The user created their own account (sign-up): the setting that refuses logins until the
-- address is verified applies to such accounts only.
ALTER TABLE users ADD COLUMN signed_up BOOLEAN NOT NULL DEFAULT FALSE;

-- The devices (network and user agent, see auth's deviceKey) each user has logged in from,
-- for the new-device notice: a login inserts its row, and only the insert that creates it
-- sends the notice.
CREATE TABLE login_devices (
    user_id       INTEGER  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device        TEXT     NOT NULL,
    first_seen_at DATETIME NOT NULL,
    last_seen_at  DATETIME NOT NULL,
    PRIMARY KEY (user_id, device)
);

-- Each request for mail of the address flows (sign-up, verification, change of address), for
-- their limits per client IP, per account and per recipient domain within a window. Deleted
-- by the flush once older than any window.
CREATE TABLE mail_requests (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    kind       TEXT     NOT NULL,
    user_id    BIGINT,
    ip         TEXT     NOT NULL DEFAULT '',
    domain     TEXT     NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL
);
CREATE INDEX mail_requests_ip ON mail_requests (ip, created_at);
CREATE INDEX mail_requests_domain ON mail_requests (domain, created_at);
CREATE INDEX mail_requests_user ON mail_requests (user_id, created_at);

-- +goose Down
DROP TABLE mail_requests;
DROP TABLE login_devices;
ALTER TABLE users DROP COLUMN signed_up;
ALTER TABLE users DROP COLUMN pending_email;
ALTER TABLE users DROP COLUMN email_verified_at;
ALTER TABLE users DROP COLUMN email_verified;

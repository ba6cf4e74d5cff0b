-- +goose Up
-- The mail outbox: each message is written, rendered, in the transaction of the change that
-- causes it, and delivered by the outbox worker of any instance. A row is claimed with a lease
-- (lease_owner, lease_until) so that one instance at a time sends it; message_id is the
-- Message-ID header, the same on every attempt, so that a duplicate is recognisable. A message
-- is pending until sent_at (delivered) or failed_at (given up after the attempt bound).
CREATE TABLE mail_outbox (
    id              INTEGER     PRIMARY KEY AUTOINCREMENT,
    message_id      TEXT        NOT NULL UNIQUE,
    kind            TEXT        NOT NULL,
    user_id         INTEGER,
    recipient       TEXT        NOT NULL,
    subject         TEXT        NOT NULL,
    body_text       TEXT        NOT NULL,
    body_html       TEXT        NOT NULL DEFAULT '',
    created_at      DATETIME    NOT NULL,
    next_attempt_at DATETIME    NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    last_error      TEXT        NOT NULL DEFAULT '',
    lease_owner     TEXT,
    lease_until     DATETIME,
    sent_at         DATETIME,
    failed_at       DATETIME
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_done ON mail_outbox (created_at) WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;

-- One-time tokens sent by mail (password_reset, verify_email, change_email): only the HMAC
-- of the token is stored (token_hash), keyed by the secret key or by a random key of
-- mail_secrets. used_at is set once, by one conditional UPDATE: one use wins.
CREATE TABLE email_tokens (
    token_hash TEXT        PRIMARY KEY,
    purpose    TEXT        NOT NULL,
    user_id    INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT        NOT NULL DEFAULT '',
    created_at DATETIME    NOT NULL,
    expires_at DATETIME    NOT NULL,
    used_at    DATETIME
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose, created_at);
CREATE INDEX email_tokens_expires ON email_tokens (expires_at);

-- Password reset requests, one row for every request accepted, whether or not it names an
-- account: the answer does the same work either way. The outbox worker resolves each
-- (finds the account, makes the token and the message) and blanks login; the rows stay for
-- the per-IP and per-domain limits until the flush.
CREATE TABLE password_reset_requests (
    id          INTEGER     PRIMARY KEY AUTOINCREMENT,
    login       TEXT        NOT NULL,
    ip          TEXT        NOT NULL DEFAULT '',
    domain      TEXT        NOT NULL DEFAULT '',
    user_agent  TEXT        NOT NULL DEFAULT '',
    created_at  DATETIME    NOT NULL,
    resolved_at DATETIME
);
CREATE INDEX password_reset_requests_ip ON password_reset_requests (ip, created_at);
CREATE INDEX password_reset_requests_domain ON password_reset_requests (domain, created_at);
CREATE INDEX password_reset_requests_pending ON password_reset_requests (id) WHERE resolved_at IS NULL;

-- Random keys made once and kept, for when no secret key is configured (the email tokens'
-- HMAC key).
CREATE TABLE mail_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE mail_secrets;
DROP TABLE password_reset_requests;
DROP TABLE email_tokens;
DROP TABLE mail_outbox;

-- +goose Up
-- A user's WebAuthn credentials (security keys, passkeys), several per user, each named.
-- credential_id is the authenticator's id (base64url), unique across users; user_handle the
-- random handle the user's credentials were registered under (what a passkey names its user
-- by); data the verified credential (public key, flags, attestation type) as JSON.
-- sign_count is the last signature counter seen: an assertion with a lower one is refused.
CREATE TABLE webauthn_credentials (
    id              INTEGER     PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   TEXT        NOT NULL,
    user_handle     TEXT        NOT NULL,
    name            TEXT        NOT NULL,
    data            TEXT        NOT NULL,
    sign_count      INTEGER     NOT NULL DEFAULT 0,
    discoverable    BOOLEAN     NOT NULL DEFAULT FALSE,
    backup_eligible BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at      DATETIME    NOT NULL,
    last_used_at    DATETIME
);
CREATE UNIQUE INDEX webauthn_credentials_credential ON webauthn_credentials (credential_id);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- A WebAuthn ceremony begun and not yet finished: registration, a passkey login, or the
-- WebAuthn answer of a login's second-factor challenge (kind). id_hash is the SHA-256 of the
-- token the client holds (for a second-factor challenge, the challenge's own id_hash); data
-- the relying party's session (the challenge, the user, the allowed credentials) as JSON.
-- Any instance finishes what another began; each is used once, and flushed when expired.
CREATE TABLE webauthn_ceremonies (
    id_hash    TEXT        PRIMARY KEY,
    kind       TEXT        NOT NULL,
    user_id    INTEGER     REFERENCES users (id) ON DELETE CASCADE,
    data       TEXT        NOT NULL,
    created_at DATETIME    NOT NULL,
    expires_at DATETIME    NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies (expires_at);

-- +goose Down
DROP TABLE webauthn_ceremonies;
DROP TABLE webauthn_credentials;

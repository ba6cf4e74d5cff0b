-- +goose Up
-- A user's TOTP factor: pending until a correct code activates it. secret is sealed with the
-- secret key (enc:v1:...) when one is set. last_step is the last time step a code was
-- accepted for: a code for it or an earlier step is refused, which is the replay protection.
CREATE TABLE totp_factors (
    id         INTEGER     PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT        NOT NULL,
    active     BOOLEAN     NOT NULL DEFAULT FALSE,
    last_step  INTEGER     NOT NULL DEFAULT 0,
    created_at DATETIME    NOT NULL
);
-- One TOTP factor per user, pending or active.
CREATE UNIQUE INDEX totp_factors_user ON totp_factors (user_id);

-- +goose Down
DROP TABLE totp_factors;

-- +goose Up
-- Lower-cased copies of the names and the email, kept by the store (Go's strings.ToLower) as
-- username_key is, so that searching and ordering users ignore case the same way on both
-- databases, outside ASCII too. authapi_lower is that function, registered by the store on
-- each connection: SQLite's own lower() folds ASCII letters only.
ALTER TABLE users ADD COLUMN first_name_key TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name_key  TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email_key      TEXT NOT NULL DEFAULT '';
UPDATE users SET first_name_key = authapi_lower(first_name),
                 last_name_key  = authapi_lower(last_name),
                 email_key      = authapi_lower(email);

-- Pages of users in each order the API offers, ties broken by id (username_key is unique,
-- and its index serves the username order). NULL sorts first, as the API says.
CREATE INDEX users_email_key_idx   ON users (email_key, id);
CREATE INDEX users_date_joined_idx ON users (date_joined, id);
CREATE INDEX users_last_login_idx  ON users (last_login, id);
-- The rare side of each filter; the common side reads the order's index and skips the few
-- rows that do not match.
CREATE INDEX users_inactive_idx  ON users (id) WHERE NOT is_active;
CREATE INDEX users_staff_idx     ON users (id) WHERE is_staff;
CREATE INDEX users_superuser_idx ON users (id) WHERE is_superuser;
-- No b-tree serves a substring search (LIKE '%word%'): SQLite scans the table for one. FTS5's
-- trigram tokenizer could, but the driver is built without FTS5.

-- +goose Down
DROP INDEX users_superuser_idx;
DROP INDEX users_staff_idx;
DROP INDEX users_inactive_idx;
DROP INDEX users_last_login_idx;
DROP INDEX users_date_joined_idx;
DROP INDEX users_email_key_idx;
ALTER TABLE users DROP COLUMN email_key;
ALTER TABLE users DROP COLUMN last_name_key;
ALTER TABLE users DROP COLUMN first_name_key;

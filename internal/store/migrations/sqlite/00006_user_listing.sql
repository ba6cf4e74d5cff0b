-- +goose Up
-- Keys for listing users, kept by the store as username_key is, lower-cased by Go's
-- strings.ToLower so that searching and ordering ignore case the same way on both databases,
-- outside ASCII too: email_key orders by email, and search_key is every searched field
-- (username, first name, last name, email) lower-cased and joined by newlines. A search word
-- never holds white space, so it matches inside one field or not at all, and one LIKE per
-- word reads one column. authapi_lower is strings.ToLower, registered by the store on each
-- connection: SQLite's own lower() folds ASCII letters only.
ALTER TABLE users ADD COLUMN email_key  TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
UPDATE users SET email_key  = authapi_lower(email),
                 search_key = username_key || char(10) || authapi_lower(first_name) || char(10) ||
                              authapi_lower(last_name) || char(10) || authapi_lower(email);

-- Pages of users in each order the API offers, ties broken by id (username_key is unique,
-- and its index serves the username order). NULL sorts first, as the API says.
CREATE INDEX users_email_key_idx   ON users (email_key, id);
CREATE INDEX users_date_joined_idx ON users (date_joined, id);
CREATE INDEX users_last_login_idx  ON users (last_login, id);
-- Each side of each flag: the count of a filtered list reads the index instead of the table.
-- Partial, not one index per flag: without statistics (authapi runs no ANALYZE) SQLite would
-- take an index on is_active for "is_active = 1" and sort every active user for one page.
CREATE INDEX users_active_idx       ON users (id) WHERE is_active;
CREATE INDEX users_inactive_idx     ON users (id) WHERE NOT is_active;
CREATE INDEX users_staff_idx        ON users (id) WHERE is_staff;
CREATE INDEX users_nonstaff_idx     ON users (id) WHERE NOT is_staff;
CREATE INDEX users_superuser_idx    ON users (id) WHERE is_superuser;
CREATE INDEX users_nonsuperuser_idx ON users (id) WHERE NOT is_superuser;
-- No b-tree serves a substring search (LIKE '%word%'): SQLite scans the table for one. FTS5's
-- trigram tokenizer could, but the driver is built without FTS5.

-- +goose Down
DROP INDEX users_nonsuperuser_idx;
DROP INDEX users_superuser_idx;
DROP INDEX users_nonstaff_idx;
DROP INDEX users_staff_idx;
DROP INDEX users_inactive_idx;
DROP INDEX users_active_idx;
DROP INDEX users_last_login_idx;
DROP INDEX users_date_joined_idx;
DROP INDEX users_email_key_idx;
ALTER TABLE users DROP COLUMN search_key;
ALTER TABLE users DROP COLUMN email_key;

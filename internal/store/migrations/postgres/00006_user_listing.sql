-- +goose Up
-- Keys for listing users, kept by the store as username_key is, lower-cased by Go's
-- strings.ToLower so that searching and ordering ignore case the same way on both databases,
-- outside ASCII too, whatever the database's locale: email_key orders by email, and
-- search_key is every searched field (username, first name, last name, email) lower-cased and
-- joined by newlines. A search word never holds white space, so it matches inside one field
-- or not at all, and one LIKE per word reads one column and one index. Collation "C" makes
-- the keys sort by code point, as SQLite sorts them.
ALTER TABLE users ALTER COLUMN username_key TYPE TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN email_key  TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN search_key TEXT COLLATE "C" NOT NULL DEFAULT '';
-- Existing rows: lower() folds as the database's LC_CTYPE does (with the C locale, ASCII
-- letters only); the store rewrites a user's keys whenever it updates the user.
UPDATE users SET email_key  = lower(email),
                 search_key = username_key || chr(10) || lower(first_name) || chr(10) ||
                              lower(last_name) || chr(10) || lower(email);

-- Pages of users in each order the API offers, ties broken by id (username_key is unique,
-- and its index serves the username order). NULL sorts first, as the API says: one index
-- serves last_login ascending (NULLS FIRST) and, read backwards, descending (NULLS LAST).
CREATE INDEX users_email_key_idx   ON users (email_key, id);
CREATE INDEX users_date_joined_idx ON users (date_joined, id);
CREATE INDEX users_last_login_idx  ON users (last_login NULLS FIRST, id);
-- Each side of each flag, as on SQLite (where the reason is given).
CREATE INDEX users_active_idx       ON users (id) WHERE is_active;
CREATE INDEX users_inactive_idx     ON users (id) WHERE NOT is_active;
CREATE INDEX users_staff_idx        ON users (id) WHERE is_staff;
CREATE INDEX users_nonstaff_idx     ON users (id) WHERE NOT is_staff;
CREATE INDEX users_superuser_idx    ON users (id) WHERE is_superuser;
CREATE INDEX users_nonsuperuser_idx ON users (id) WHERE NOT is_superuser;

-- Substring search (LIKE '%word%') needs a trigram index, from the pg_trgm extension. Since
-- PostgreSQL 13 it is trusted: a user with CREATE on the database may install it. Where it
-- cannot be installed, search still works, by scanning the table; the README (Persistence)
-- shows how to add the index later. The extension may already live in another schema
-- (tests keep it in public): its operator class is named with that schema.
-- +goose StatementBegin
DO $$
DECLARE
    trgm_schema TEXT;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN insufficient_privilege OR undefined_file OR unique_violation OR duplicate_object THEN
        RAISE WARNING 'pg_trgm is not available (%): searching users will scan the table', SQLERRM;
    END;
    SELECT n.nspname INTO trgm_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format('CREATE INDEX users_search_key_trgm_idx ON users USING gin (search_key %I.gin_trgm_ops)', trgm_schema);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS users_search_key_trgm_idx;
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
ALTER TABLE users ALTER COLUMN username_key TYPE TEXT COLLATE "default";

-- +goose Up
-- Lower-cased copies of the names and the email, kept by the store (Go's strings.ToLower) as
-- username_key is, so that searching and ordering users ignore case the same way on both
-- databases, outside ASCII too, whatever the database's locale. Collation "C" makes the keys
-- sort by code point, as SQLite sorts them.
ALTER TABLE users ALTER COLUMN username_key TYPE TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN first_name_key TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name_key  TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email_key      TEXT COLLATE "C" NOT NULL DEFAULT '';
-- Existing rows: lower() folds as the database's LC_CTYPE does (with the C locale, ASCII
-- letters only); the store rewrites a user's keys whenever it updates the user.
UPDATE users SET first_name_key = lower(first_name),
                 last_name_key  = lower(last_name),
                 email_key      = lower(email);

-- Pages of users in each order the API offers, ties broken by id (username_key is unique,
-- and its index serves the username order). NULL sorts first, as the API says: one index
-- serves last_login ascending (NULLS FIRST) and, read backwards, descending (NULLS LAST).
CREATE INDEX users_email_key_idx   ON users (email_key, id);
CREATE INDEX users_date_joined_idx ON users (date_joined, id);
CREATE INDEX users_last_login_idx  ON users (last_login NULLS FIRST, id);
-- The rare side of each filter; the common side reads the order's index and skips the few
-- rows that do not match.
CREATE INDEX users_inactive_idx  ON users (id) WHERE NOT is_active;
CREATE INDEX users_staff_idx     ON users (id) WHERE is_staff;
CREATE INDEX users_superuser_idx ON users (id) WHERE is_superuser;

-- Substring search (LIKE '%word%') needs trigram indexes, from the pg_trgm extension. Since
-- PostgreSQL 13 it is trusted: a user with CREATE on the database may install it. Where it
-- cannot be installed, search still works, by scanning the table; an administrator can run
-- CREATE EXTENSION pg_trgm and then the four CREATE INDEX statements below by hand. The
-- extension may already live in another schema (tests keep it in public): its operator
-- class is named with that schema.
-- +goose StatementBegin
DO $$
DECLARE
    trgm_schema TEXT;
    col TEXT;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN insufficient_privilege OR undefined_file OR unique_violation OR duplicate_object THEN
        RAISE WARNING 'pg_trgm is not available (%): searching users will scan the table', SQLERRM;
    END;
    SELECT n.nspname INTO trgm_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NULL THEN
        RETURN;
    END IF;
    FOREACH col IN ARRAY ARRAY['username_key', 'first_name_key', 'last_name_key', 'email_key'] LOOP
        EXECUTE format('CREATE INDEX %I ON users USING gin (%I %I.gin_trgm_ops)',
                       'users_' || col || '_trgm_idx', col, trgm_schema);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS users_email_key_trgm_idx;
DROP INDEX IF EXISTS users_last_name_key_trgm_idx;
DROP INDEX IF EXISTS users_first_name_key_trgm_idx;
DROP INDEX IF EXISTS users_username_key_trgm_idx;
DROP INDEX users_superuser_idx;
DROP INDEX users_staff_idx;
DROP INDEX users_inactive_idx;
DROP INDEX users_last_login_idx;
DROP INDEX users_date_joined_idx;
DROP INDEX users_email_key_idx;
ALTER TABLE users DROP COLUMN email_key;
ALTER TABLE users DROP COLUMN last_name_key;
ALTER TABLE users DROP COLUMN first_name_key;
ALTER TABLE users ALTER COLUMN username_key TYPE TEXT COLLATE "default";

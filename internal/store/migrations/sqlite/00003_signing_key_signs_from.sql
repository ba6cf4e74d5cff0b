-- +goose Up
-- When a signing key begins to sign, if it was set when the key was created (an immediate
-- rotation). NULL: derived from created_at, as for every key stored before this column.
ALTER TABLE signing_keys ADD COLUMN signs_from DATETIME;

-- +goose Down
ALTER TABLE signing_keys DROP COLUMN signs_from;

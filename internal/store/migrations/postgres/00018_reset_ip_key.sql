-- +goose Up
-- The client IP's throttling key (an IPv6 address's /64, see throttle.IPKey): the per-IP
-- limit of password reset requests counts by it, so that one client cannot multiply its
-- allowance by changing addresses within its network. ip keeps the address itself, for the
-- message. Older rows key by their address.
ALTER TABLE password_reset_requests ADD COLUMN ip_key TEXT NOT NULL DEFAULT '';
UPDATE password_reset_requests SET ip_key = ip;
DROP INDEX password_reset_requests_ip;
CREATE INDEX password_reset_requests_ip_key ON password_reset_requests (ip_key, created_at);

-- +goose Down
DROP INDEX password_reset_requests_ip_key;
CREATE INDEX password_reset_requests_ip ON password_reset_requests (ip, created_at);
ALTER TABLE password_reset_requests DROP COLUMN ip_key;

-- When each API key was last used, to the minute (operators find unused keys to revoke):
-- authentication writes it at most once a minute per key (crates/store/src/api_keys.rs).
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;

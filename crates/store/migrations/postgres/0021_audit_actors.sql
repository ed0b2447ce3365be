-- The audit log (postgres dialect): the actor is a dashboard user, an API key, or neither (the
-- server itself: expiries, retention), and each entry names the HTTP request it was made in.

ALTER TABLE audit_entries ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE audit_entries ADD COLUMN api_key_id TEXT REFERENCES api_keys (id);
ALTER TABLE audit_entries ADD COLUMN request_id TEXT;
ALTER TABLE audit_entries ADD CONSTRAINT audit_entries_one_actor
    CHECK (user_id IS NULL OR api_key_id IS NULL);
-- Retention deletes the oldest entries of every organization.
CREATE INDEX audit_entries_created ON audit_entries (created_at);

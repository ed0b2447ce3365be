-- The audit log (sqlite dialect): the actor is a dashboard user, an API key, or neither (the
-- server itself: expiries, retention), and each entry names the HTTP request it was made in.
-- SQLite cannot drop NOT NULL from a column: the table is rebuilt.

CREATE TABLE audit_entries_new (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    user_id         TEXT REFERENCES users (id),
    api_key_id      TEXT REFERENCES api_keys (id),
    action          TEXT NOT NULL,
    object_type     TEXT NOT NULL,
    object_id       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    client_address  TEXT,
    request_id      TEXT,
    CHECK (user_id IS NULL OR api_key_id IS NULL)
);
INSERT INTO audit_entries_new (id, org_id, environment, user_id, action, object_type, object_id,
                               created_at, client_address)
    SELECT id, org_id, environment, user_id, action, object_type, object_id, created_at,
           client_address
    FROM audit_entries;
DROP TABLE audit_entries;
ALTER TABLE audit_entries_new RENAME TO audit_entries;
CREATE INDEX audit_entries_scope ON audit_entries (org_id, environment, created_at, id);
-- Retention deletes the oldest entries of every organization.
CREATE INDEX audit_entries_created ON audit_entries (created_at);

-- The audit log (sqlite dialect).

-- Who (a dashboard user) looked at or acted on what in the dashboard (personal data views included).
CREATE TABLE audit_entries (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    user_id         TEXT NOT NULL REFERENCES users (id),
    action          TEXT NOT NULL,
    object_type     TEXT NOT NULL,
    object_id       TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX audit_entries_scope ON audit_entries (org_id, environment, created_at, id);

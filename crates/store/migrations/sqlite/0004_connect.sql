-- Connect (SQLite dialect): connections between organizations and the share tokens that
-- travel over them. A connection and its tokens live in one environment; both ends are
-- recorded so each side can find them.

CREATE TABLE connections (
    id              TEXT PRIMARY KEY,
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    source_org_id   TEXT NOT NULL REFERENCES organizations (id),
    destination_org_id TEXT NOT NULL REFERENCES organizations (id),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'active', 'inactive')),
    creator_type    TEXT NOT NULL,
    creator_id      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    activated_at    BIGINT,
    deactivated_at  BIGINT
);
CREATE INDEX connections_source ON connections (source_org_id, environment, created_at, id);
CREATE INDEX connections_destination ON connections (destination_org_id, environment, created_at, id);
-- At most one live (pending or active) connection per pair and environment: the duplicate check
-- of create and reactivate, race-free. Inactive connections do not count (they are kept forever).
CREATE UNIQUE INDEX connections_live_pair ON connections (source_org_id, destination_org_id, environment)
    WHERE status IN ('pending', 'active');

-- Connect share tokens (PostgreSQL dialect). A token offers one source inquiry to the destination
-- of a connection, in the connection's environment. Both ends are recorded so each side can
-- find its tokens. No personal data here: the source inquiry keeps it, sealed.

CREATE TABLE share_tokens (
    id              TEXT PRIMARY KEY,
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    connection_id   TEXT NOT NULL REFERENCES connections (id),
    source_org_id   TEXT NOT NULL REFERENCES organizations (id),
    destination_org_id TEXT NOT NULL REFERENCES organizations (id),
    source_inquiry_id TEXT NOT NULL REFERENCES inquiries (id),
    status          TEXT NOT NULL
                    CHECK (status IN ('created', 'pending', 'redeemed', 'expired', 'failed')),
    creator_type    TEXT NOT NULL,
    creator_id      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    pending_at      BIGINT,
    redeemed_at     BIGINT,
    failed_at       BIGINT,
    failure_reason  TEXT,
    expired_at      BIGINT,
    destination_inquiry_id TEXT
);
-- Each end's list, newest first.
CREATE INDEX share_tokens_source ON share_tokens (source_org_id, environment, created_at, id);
CREATE INDEX share_tokens_destination ON share_tokens (destination_org_id, environment, created_at, id);
-- The TTL job: tokens still `created`, by expiry time.
CREATE INDEX share_tokens_due ON share_tokens (expires_at) WHERE status = 'created';

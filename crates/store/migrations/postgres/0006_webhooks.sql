-- Webhooks (postgres dialect): an organization's subscriptions to its events in one environment,
-- and one delivery per (webhook, event). Deliveries are created in the transaction that writes
-- the event and are sent by jobs, so they survive restarts.

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    name            TEXT,
    description     TEXT,
    url             TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('enabled', 'disabled', 'archived')),
    -- JSON arrays of strings.
    enabled_events  TEXT NOT NULL,
    api_attributes_blocklist TEXT NOT NULL,
    api_key_inflection TEXT NOT NULL CHECK (api_key_inflection IN ('kebab', 'camel', 'snake')),
    -- Sealed with the master key (AAD: the webhook id); the previous secret signs too until
    -- previous_secret_expires_at (rotation).
    secret          BYTEA NOT NULL,
    previous_secret BYTEA,
    previous_secret_expires_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    archived_at     BIGINT
);
CREATE INDEX webhooks_scope ON webhooks (org_id, environment, created_at, id);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id),
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    event_id        TEXT NOT NULL REFERENCES events (id),
    event_name      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts_made   BIGINT NOT NULL,
    first_attempted_at BIGINT,
    last_attempted_at BIGINT,
    next_attempt_at BIGINT,
    last_status_code BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at, id);

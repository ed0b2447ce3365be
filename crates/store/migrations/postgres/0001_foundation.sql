-- Foundation schema (PostgreSQL dialect). Timestamps are microseconds since the Unix epoch (BIGINT),
-- identical on both backends so the same SQL text sorts and compares them the same way.
-- Personal data lives only in *_sealed columns (AES-256-GCM under a per-inquiry data key).

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    environment  TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    name         TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    permissions  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_scope ON api_keys (org_id, environment);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'reviewer', 'viewer')),
    created_at     BIGINT NOT NULL
);

CREATE TABLE inquiry_templates (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES organizations (id),
    environment           TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    name                  TEXT NOT NULL,
    published_version_id  TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX inquiry_templates_scope ON inquiry_templates (org_id, environment, created_at, id);

CREATE TABLE inquiry_template_versions (
    id              TEXT PRIMARY KEY,
    template_id     TEXT NOT NULL REFERENCES inquiry_templates (id),
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL,
    version_number  BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('draft', 'published', 'superseded')),
    definition      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    published_at    BIGINT,
    UNIQUE (template_id, version_number)
);
CREATE INDEX inquiry_template_versions_scope
    ON inquiry_template_versions (org_id, environment, template_id, created_at, id);

CREATE TABLE inquiries (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES organizations (id),
    environment           TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    template_id           TEXT REFERENCES inquiry_templates (id),
    template_version_id   TEXT REFERENCES inquiry_template_versions (id),
    status                TEXT NOT NULL,
    reference_id          TEXT,
    tags                  TEXT NOT NULL,
    data_sealed           BYTEA,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    started_at            BIGINT,
    completed_at          BIGINT,
    failed_at             BIGINT,
    expired_at            BIGINT,
    marked_for_review_at  BIGINT,
    decisioned_at         BIGINT,
    redacted_at           BIGINT,
    expires_at            BIGINT
);
CREATE INDEX inquiries_scope ON inquiries (org_id, environment, created_at, id);
CREATE INDEX inquiries_reference ON inquiries (org_id, environment, reference_id);

-- One data key per inquiry, wrapped by the master key. Deleting the row crypto-shreds the
-- inquiry's sealed data wherever it was copied (events, for instance).
CREATE TABLE data_keys (
    owner_id     TEXT PRIMARY KEY,
    wrapped_key  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    environment  TEXT NOT NULL,
    name         TEXT NOT NULL,
    object_type  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    key_owner_id TEXT,
    payload      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX events_scope ON events (org_id, environment, seq);
CREATE INDEX events_object ON events (org_id, environment, object_id, seq);

CREATE TABLE idempotency_records (
    caller_id        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     BYTEA NOT NULL,
    status_code      BIGINT,
    response_sealed  BYTEA,
    object_id        TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (caller_id, idempotency_key)
);
CREATE INDEX idempotency_records_created ON idempotency_records (created_at);
CREATE INDEX idempotency_records_object ON idempotency_records (object_id);

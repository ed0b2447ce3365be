-- Jobs, files, identity documents, verifications, reports, end-user sessions and confirmation
-- codes (SQLite dialect). Sealed columns hold personal data under the inquiry's data key.

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    queue         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    -- Ids and numbers only: personal data never goes into a job payload.
    payload       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    run_at        BIGINT NOT NULL,
    locked_by     TEXT,
    locked_until  BIGINT,
    last_error    TEXT,
    dedupe_key    TEXT UNIQUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (status, run_at);

ALTER TABLE inquiries ADD COLUMN submissions BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inquiries ADD COLUMN processed_submission BIGINT NOT NULL DEFAULT 0;

CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL,
    inquiry_id      TEXT NOT NULL REFERENCES inquiries (id),
    kind            TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            BIGINT NOT NULL,
    content_sealed  BLOB,
    created_at      BIGINT NOT NULL
);
CREATE INDEX files_inquiry ON files (inquiry_id, created_at);

CREATE TABLE documents (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    environment   TEXT NOT NULL,
    inquiry_id    TEXT NOT NULL REFERENCES inquiries (id),
    kind          TEXT NOT NULL CHECK (kind IN ('government-id', 'proof-of-address')),
    data_sealed   BLOB,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (inquiry_id, kind)
);

CREATE TABLE verifications (
    id                 TEXT PRIMARY KEY,
    org_id             TEXT NOT NULL REFERENCES organizations (id),
    environment        TEXT NOT NULL,
    inquiry_id         TEXT NOT NULL REFERENCES inquiries (id),
    verification_type  TEXT NOT NULL,
    submission         BIGINT NOT NULL,
    status             TEXT NOT NULL,
    required           BIGINT NOT NULL,
    result_sealed      BLOB,
    created_at         BIGINT NOT NULL,
    completed_at       BIGINT,
    UNIQUE (inquiry_id, verification_type, submission)
);
CREATE INDEX verifications_scope ON verifications (org_id, environment, inquiry_id, created_at);

CREATE TABLE reports (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    environment   TEXT NOT NULL,
    inquiry_id    TEXT NOT NULL REFERENCES inquiries (id),
    report_type   TEXT NOT NULL,
    submission    BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'errored')),
    has_match     BIGINT NOT NULL,
    result_sealed BLOB,
    created_at    BIGINT NOT NULL,
    completed_at  BIGINT,
    UNIQUE (inquiry_id, report_type, submission)
);
CREATE INDEX reports_scope ON reports (org_id, environment, inquiry_id, created_at);

-- Session tokens and one-time links that open an inquiry in the hosted flow. Only hashes.
CREATE TABLE inquiry_sessions (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    environment  TEXT NOT NULL,
    inquiry_id   TEXT NOT NULL REFERENCES inquiries (id),
    kind         TEXT NOT NULL CHECK (kind IN ('session', 'one-time-link', 'browser')),
    token_hash   BLOB NOT NULL UNIQUE,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX inquiry_sessions_inquiry ON inquiry_sessions (inquiry_id);

CREATE TABLE confirmation_codes (
    inquiry_id    TEXT NOT NULL REFERENCES inquiries (id),
    field_key     TEXT NOT NULL,
    code_hash     TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (inquiry_id, field_key)
);

-- Screening lists, imported with `idshare lists import`. Public data, not sealed.
CREATE TABLE list_entries (
    list        TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    entry       TEXT NOT NULL,
    PRIMARY KEY (list, entity_id)
);
CREATE TABLE list_imports (
    list         TEXT PRIMARY KEY,
    entries      BIGINT NOT NULL,
    imported_at  BIGINT NOT NULL
);

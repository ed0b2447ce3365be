-- Workflows (sqlite dialect): definitions in numbered versions (one published at a time), and
-- runs, one per (published version, triggering event) — the unique key that keeps an event
-- from running a workflow version twice.

CREATE TABLE workflows (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    name            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    -- Signs make-https-request steps; sealed with the master key (AAD: the workflow id).
    secret          BLOB NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX workflows_scope ON workflows (org_id, environment, created_at, id);

CREATE TABLE workflow_versions (
    id              TEXT PRIMARY KEY,
    workflow_id     TEXT NOT NULL REFERENCES workflows (id),
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    number          BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('draft', 'published', 'superseded')),
    -- The validated definition (JSON) and its trigger event, for matching events quickly.
    definition      TEXT NOT NULL,
    trigger_event   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    published_at    BIGINT,
    UNIQUE (workflow_id, number)
);
CREATE INDEX workflow_versions_workflow ON workflow_versions (workflow_id, created_at, id);
CREATE UNIQUE INDEX workflow_versions_one_published ON workflow_versions (workflow_id)
    WHERE status = 'published';
CREATE INDEX workflow_versions_trigger ON workflow_versions (org_id, environment, trigger_event)
    WHERE status = 'published';

CREATE TABLE workflow_runs (
    id              TEXT PRIMARY KEY,
    workflow_id     TEXT NOT NULL REFERENCES workflows (id),
    version_id      TEXT NOT NULL REFERENCES workflow_versions (id),
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    event_id        TEXT NOT NULL REFERENCES events (id),
    event_name      TEXT NOT NULL,
    -- How many runs led to this one (1: started by an event no run caused); bounds loops.
    chain           BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('created', 'in_progress', 'completed', 'errored')),
    -- JSON array: one record per step reached (id, action, status, input, output, error).
    steps           TEXT NOT NULL,
    error           TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    completed_at    BIGINT,
    UNIQUE (version_id, event_id)
);
CREATE INDEX workflow_runs_scope ON workflow_runs (org_id, environment, created_at, id);

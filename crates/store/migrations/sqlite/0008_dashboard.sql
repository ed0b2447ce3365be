-- Dashboard sign-in (sqlite dialect): one row per signed-in browser, found by the SHA-256 of
-- its cookie token, so any node can serve it and a stolen database holds no usable token.

CREATE TABLE dashboard_sessions (
    id              TEXT PRIMARY KEY,
    token_hash      BLOB NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES users (id),
    -- The environment the user is looking at (the switch in the page header).
    environment     TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    -- Idle expiry (moved forward as the session is used) and the absolute limit.
    expires_at      BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    signed_out_at   BIGINT
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions (user_id);

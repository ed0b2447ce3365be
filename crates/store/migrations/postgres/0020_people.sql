-- People (postgres dialect): invitations, disabling and removing users, one-time set-password links,
-- TOTP two-factor authentication, and what a user's sessions show them.

-- An invited user has no password yet (password_hash is '') and no password_set_at; a reset
-- clears the hash but keeps password_set_at (the user stays active, waiting for the link).
ALTER TABLE users ADD COLUMN password_set_at BIGINT;
UPDATE users SET password_set_at = created_at;
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
-- A removed user's row stays, for the audit entries that name it; it cannot sign in and its
-- address cannot be used again.
ALTER TABLE users ADD COLUMN removed_at BIGINT;
ALTER TABLE users ADD COLUMN last_signed_in_at BIGINT;
-- The TOTP secret sealed under the master key (its context names the user); enabled once a
-- code confirmed it. The last time step accepted, so a code cannot be used twice.
ALTER TABLE users ADD COLUMN totp_secret BYTEA;
ALTER TABLE users ADD COLUMN totp_enabled_at BIGINT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

-- Since when every user of the organization must use two-factor authentication (NULL: not
-- required).
ALTER TABLE organizations ADD COLUMN two_factor_required_at BIGINT;

-- One-time links that set a user's password (an invitation or a reset), found by the SHA-256 of
-- their token; used once, then never again.
CREATE TABLE set_password_links (
    id              TEXT PRIMARY KEY,
    token_hash      BYTEA NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES users (id),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE INDEX set_password_links_user ON set_password_links (user_id);

-- Where a session was signed in from, for its user's list of sessions.
ALTER TABLE dashboard_sessions ADD COLUMN client_address TEXT;
ALTER TABLE dashboard_sessions ADD COLUMN user_agent TEXT;
-- A session whose password was right but whose second factor is still to come: 'code' (the
-- user has two-factor on) until a code is given; NULL once signed in fully.
ALTER TABLE dashboard_sessions ADD COLUMN awaiting TEXT CHECK (awaiting IN ('code'));

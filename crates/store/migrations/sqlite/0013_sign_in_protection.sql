-- Sign-in protection (sqlite dialect).

-- Failed sign-ins of an account from browsers it does not trust, counted since its last
-- success (or an administrator's unlock); the wait they impose is computed from these two.
ALTER TABLE users ADD COLUMN failed_sign_ins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_failed_sign_in_at BIGINT;

-- Where a sign-in (successful or failed) came from.
ALTER TABLE audit_entries ADD COLUMN client_address TEXT;

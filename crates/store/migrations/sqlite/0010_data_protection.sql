-- Data protection: the master key check, and erasing event payloads on redaction (sqlite dialect).

-- Which master key seals this database: an HMAC-SHA256 under the key of a fixed message, written
-- the first time a server starts with a key. A start with another key, or without the key while
-- this row exists, is refused instead of sealing new data under a key the old data does not open.
CREATE TABLE master_key_check (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    check_value  BLOB NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Redaction empties the payloads sealed under the inquiry's data key, in its transaction.
CREATE INDEX events_key_owner ON events (key_owner_id) WHERE key_owner_id IS NOT NULL;

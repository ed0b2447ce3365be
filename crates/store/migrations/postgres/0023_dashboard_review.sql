-- Every attempt of a webhook delivery with the receiver's answer, for the delivery's page: the
-- status code, how long it took, the error, and the start of the answer's body (at most 1 KiB,
-- kept as text: it is the receiver's reply, not data idshare holds about a person).
CREATE TABLE webhook_delivery_attempts (
    delivery_id      TEXT NOT NULL REFERENCES webhook_deliveries (id),
    -- 1 for the first attempt; redeliveries continue the count.
    number           BIGINT NOT NULL,
    attempted_at     BIGINT NOT NULL,
    latency_micros   BIGINT NOT NULL,
    status_code      BIGINT,
    error            TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, number)
);

-- The inquiries' search index (the dashboard's search by name or email): keyed hashes of an
-- inquiry's normalized email address, name words and whole name, under a random key per
-- organization and environment sealed with the master key. Never the values themselves.
CREATE TABLE inquiry_search_keys (
    -- org_id:environment
    id          TEXT PRIMARY KEY,
    key_sealed  BYTEA NOT NULL
);
CREATE TABLE inquiry_search_terms (
    inquiry_id  TEXT NOT NULL REFERENCES inquiries (id),
    term        BYTEA NOT NULL,
    PRIMARY KEY (inquiry_id, term)
);
CREATE INDEX inquiry_search_terms_term ON inquiry_search_terms (term);

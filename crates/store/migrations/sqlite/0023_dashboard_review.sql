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

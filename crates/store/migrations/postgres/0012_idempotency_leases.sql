-- An unfinished claim is held by one request (claim_token) until lease_expires_at; its node
-- renews the lease while the request runs, and a retry after the lease ran out takes it over.
ALTER TABLE idempotency_records ADD COLUMN claim_token TEXT;
ALTER TABLE idempotency_records ADD COLUMN lease_expires_at BIGINT;

-- The inquiries a stored answer concerns (the inquiry itself, or one its confirmation, file,
-- document, report … belongs to): redacting one of them deletes the answer.
CREATE TABLE idempotency_record_inquiries (
    caller_id        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    inquiry_id       TEXT NOT NULL,
    PRIMARY KEY (caller_id, idempotency_key, inquiry_id),
    FOREIGN KEY (caller_id, idempotency_key)
        REFERENCES idempotency_records (caller_id, idempotency_key) ON DELETE CASCADE
);
CREATE INDEX idempotency_record_inquiries_inquiry ON idempotency_record_inquiries (inquiry_id);

-- object_id held the answer's `data.id`: an inquiry, or `<inquiry id>:<field>` for a
-- confirmation. Other answers about an inquiry were not linked and expire with the retention.
INSERT INTO idempotency_record_inquiries (caller_id, idempotency_key, inquiry_id)
SELECT caller_id, idempotency_key, split_part(object_id, ':', 1)
FROM idempotency_records WHERE object_id LIKE 'inq!_%' ESCAPE '!';

DROP INDEX idempotency_records_object;
ALTER TABLE idempotency_records DROP COLUMN object_id;

-- Events a consumer can trust (postgres dialect).

-- An event's sequence is its writing transaction's id (xid8) times 65536, plus its rank among
-- that transaction's events (crates/store/src/events.rs): the Events API serves only events
-- below the oldest transaction still running, so a transaction that began earlier can never
-- commit a number below one already served. Events written before keep their numbers, which
-- are below every new one (checked here).
ALTER TABLE events ALTER COLUMN seq DROP IDENTITY;
DO $$
BEGIN
    IF (SELECT COALESCE(MAX(seq), 0) FROM events) >= pg_current_xact_id()::text::bigint * 65536 THEN
        RAISE EXCEPTION 'events.seq is above the first transaction-ordered sequence; contact the maintainers';
    END IF;
END
$$;

-- Deliveries of one object to one webhook are sent in event order: a delivery knows its
-- object and its event's sequence. A pending delivery with no next attempt waits for an
-- earlier one of the same object (crates/store/src/webhooks.rs).
ALTER TABLE webhook_deliveries ADD COLUMN object_id TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN event_seq BIGINT;
UPDATE webhook_deliveries SET
    object_id = (SELECT object_id FROM events WHERE events.id = webhook_deliveries.event_id),
    event_seq = (SELECT seq FROM events WHERE events.id = webhook_deliveries.event_id);
ALTER TABLE webhook_deliveries ALTER COLUMN object_id SET NOT NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN event_seq SET NOT NULL;
CREATE INDEX webhook_deliveries_pending_by_object
    ON webhook_deliveries (webhook_id, object_id, event_seq) WHERE status = 'pending';

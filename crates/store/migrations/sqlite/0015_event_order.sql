-- Events a consumer can trust (sqlite dialect). Event sequences need no change here: SQLite
-- has one writer at a time, so AUTOINCREMENT numbers events in commit order.

-- Deliveries of one object to one webhook are sent in event order: a delivery knows its
-- object and its event's sequence. A pending delivery with no next attempt waits for an
-- earlier one of the same object (crates/store/src/webhooks.rs).
ALTER TABLE webhook_deliveries ADD COLUMN object_id TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_deliveries ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;
UPDATE webhook_deliveries SET
    object_id = (SELECT object_id FROM events WHERE events.id = webhook_deliveries.event_id),
    event_seq = (SELECT seq FROM events WHERE events.id = webhook_deliveries.event_id);
CREATE INDEX webhook_deliveries_pending_by_object
    ON webhook_deliveries (webhook_id, object_id, event_seq) WHERE status = 'pending';

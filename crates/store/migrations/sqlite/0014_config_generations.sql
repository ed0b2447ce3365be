-- Configuration generations (sqlite dialect).

-- One counter per organization and environment, bumped in the transaction of every change to
-- its webhooks or workflows. Each node caches what an event sets in motion (the enabled
-- webhooks' subscriptions, the published workflow triggers) with the generation it read them
-- at, and reads them again only when the stored generation differs: one indexed read per
-- transaction that records events instead of two queries per event, and a change on one node
-- is seen by the next event on every other.
CREATE TABLE config_generations (
    org_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    generation BIGINT NOT NULL,
    PRIMARY KEY (org_id, environment)
);

-- How a webhook's deliveries are shaped: `idshare` (Persona's shape plus idshare's extensions) or
-- `persona` (exactly Persona's shape), as the `Idshare-Shape` request header does for answers.
ALTER TABLE webhooks ADD COLUMN shape TEXT NOT NULL DEFAULT 'idshare';

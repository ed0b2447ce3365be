-- Confirmation codes keep their salt beside the hash (`code_hash` is SHA-256 of the salt and
-- the code; the code itself is never stored), and remember the value the code was sent to,
-- sealed under the inquiry's data key like fields, so that a confirmation stops counting once
-- the field changes and is crypto-shredded with the inquiry on redaction.

ALTER TABLE confirmation_codes ADD COLUMN code_salt TEXT NOT NULL DEFAULT '';
ALTER TABLE confirmation_codes ADD COLUMN value_sealed BLOB;

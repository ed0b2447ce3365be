-- Retention: days after an inquiry ends before it is redacted automatically, set on a template
-- or as the organization's default (NULL: none). See crates/store/src/retention.rs.
ALTER TABLE inquiry_templates ADD COLUMN retention_days BIGINT;
ALTER TABLE organizations ADD COLUMN retention_days BIGINT;

-- The last decision on an inquiry (and any entry on one object) is read by object, newest first.
CREATE INDEX audit_entries_object ON audit_entries (object_id, created_at);

-- Master key rotation (postgres dialect).

-- Which master key wraps each data key: its id (crates/store/src/crypto.rs, MasterKeyId), so that
-- a rotation finds the data keys still under an old key and a server refuses to start without a
-- key its data needs. Data keys written before are all under the key of master_key_check: the
-- first start with that key fills in their key id.
ALTER TABLE data_keys ADD COLUMN key_id TEXT;
CREATE INDEX data_keys_key_id ON data_keys (key_id);

-- The id of the key the check value is of: it names the key a database needs in messages.
ALTER TABLE master_key_check ADD COLUMN key_id TEXT;

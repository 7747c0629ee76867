-- COMPLETION (not in the seed document): migration 122
-- (create_device_keys_and_key_exchanges.sql) is not given by seed 002. The checklist names what
-- it creates: tables device_keys and key_exchanges; foreign keys device_keys_user_fk
-- (device_keys.user_id -> users.id), key_exchanges_conv_fk (key_exchanges.conversation_id ->
-- conversations.id), key_exchanges_initiator_fk (initiator_id -> users.id), key_exchanges_peer_fk
-- (peer_id -> users.id); unique constraint device_keys_unique_device; function
-- get_device_key_stats(); trigger trigger_device_keys_updated_at with function
-- update_device_keys_updated_at() (named by the rollback). Columns are those smoke tests 2 and 3
-- write. Inferred: types, the delete rules (the document gives none: CASCADE chosen), the
-- unique constraint's columns (user_id, device_id), the function's result. The document names
-- no index for these tables, so none is invented.

CREATE TABLE device_keys (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID NOT NULL,
    device_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    private_key_encrypted TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT device_keys_user_fk FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT device_keys_unique_device UNIQUE (user_id, device_id)
);

CREATE TABLE key_exchanges (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    conversation_id UUID NOT NULL,
    initiator_id UUID NOT NULL,
    peer_id UUID NOT NULL,
    shared_secret_hash BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT key_exchanges_conv_fk FOREIGN KEY (conversation_id) REFERENCES conversations(id) ON DELETE CASCADE,
    CONSTRAINT key_exchanges_initiator_fk FOREIGN KEY (initiator_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT key_exchanges_peer_fk FOREIGN KEY (peer_id) REFERENCES users(id) ON DELETE CASCADE
);

CREATE OR REPLACE FUNCTION get_device_key_stats()
RETURNS TABLE (total_device_keys BIGINT, users_with_device_keys BIGINT, total_key_exchanges BIGINT) AS $$
    SELECT (SELECT COUNT(*) FROM device_keys),
           (SELECT COUNT(DISTINCT user_id) FROM device_keys),
           (SELECT COUNT(*) FROM key_exchanges);
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION update_device_keys_updated_at()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trigger_device_keys_updated_at
    BEFORE UPDATE ON device_keys
    FOR EACH ROW EXECUTE FUNCTION update_device_keys_updated_at();

INSERT INTO schema_migrations (version) VALUES (122) ON CONFLICT DO NOTHING;

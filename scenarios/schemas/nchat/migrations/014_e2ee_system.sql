-- nChat v0.4.0, migration 014_e2ee_system.sql, as seed 000 (000_898ca8d1023e88e6.txt) gives it:
-- the statements of "New Database Tables" 1-8 and "Table Modifications" 1-2, in document order.

-- 1. nchat_user_master_keys
CREATE TABLE nchat_user_master_keys (
    user_id UUID PRIMARY KEY REFERENCES nchat_users(id) ON DELETE CASCADE,
    master_key_salt BYTEA NOT NULL,  -- 32 bytes
    pbkdf2_iterations INTEGER NOT NULL DEFAULT 100000,
    recovery_code_hash TEXT NOT NULL,  -- SHA-256 hash of recovery code
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_user_master_keys_user_id ON nchat_user_master_keys(user_id);

-- 2. nchat_identity_keys
CREATE TABLE nchat_identity_keys (
    device_id TEXT PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES nchat_users(id) ON DELETE CASCADE,
    identity_key_public BYTEA NOT NULL,  -- 32 bytes (Curve25519)
    identity_key_private_encrypted BYTEA NOT NULL,  -- ~80 bytes (AES-256-GCM encrypted)
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    UNIQUE(user_id, device_id)
);

CREATE INDEX idx_identity_keys_user_id ON nchat_identity_keys(user_id);
CREATE INDEX idx_identity_keys_device_id ON nchat_identity_keys(device_id);

-- 3. nchat_signed_prekeys
CREATE TABLE nchat_signed_prekeys (
    id SERIAL PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES nchat_identity_keys(device_id) ON DELETE CASCADE,
    signed_prekey_id INTEGER NOT NULL,
    signed_prekey_public BYTEA NOT NULL,  -- 32 bytes
    signed_prekey_private_encrypted BYTEA NOT NULL,  -- ~80 bytes
    signature BYTEA NOT NULL,  -- 64 bytes (Ed25519)
    rotation_date TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    UNIQUE(device_id, signed_prekey_id)
);

CREATE INDEX idx_signed_prekeys_device_id ON nchat_signed_prekeys(device_id);
CREATE INDEX idx_signed_prekeys_active ON nchat_signed_prekeys(device_id, is_active);
CREATE INDEX idx_signed_prekeys_rotation ON nchat_signed_prekeys(rotation_date)
    WHERE is_active = TRUE;

-- 4. nchat_one_time_prekeys
CREATE TABLE nchat_one_time_prekeys (
    id SERIAL PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES nchat_identity_keys(device_id) ON DELETE CASCADE,
    prekey_id INTEGER NOT NULL,
    prekey_public BYTEA NOT NULL,  -- 32 bytes
    prekey_private_encrypted BYTEA NOT NULL,  -- ~80 bytes
    is_consumed BOOLEAN NOT NULL DEFAULT FALSE,
    consumed_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    UNIQUE(device_id, prekey_id)
);

CREATE INDEX idx_one_time_prekeys_device_id ON nchat_one_time_prekeys(device_id);
CREATE INDEX idx_one_time_prekeys_available ON nchat_one_time_prekeys(device_id, is_consumed)
    WHERE is_consumed = FALSE;
CREATE INDEX idx_one_time_prekeys_consumed ON nchat_one_time_prekeys(consumed_at)
    WHERE is_consumed = TRUE;

-- 5. nchat_signal_sessions
CREATE TABLE nchat_signal_sessions (
    id SERIAL PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES nchat_identity_keys(device_id) ON DELETE CASCADE,
    peer_user_id UUID NOT NULL REFERENCES nchat_users(id) ON DELETE CASCADE,
    peer_device_id TEXT NOT NULL,
    session_state_encrypted BYTEA NOT NULL,  -- Encrypted Double Ratchet state (~500 bytes)
    is_initiator BOOLEAN NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    last_message_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    UNIQUE(device_id, peer_user_id, peer_device_id)
);

CREATE INDEX idx_signal_sessions_device_id ON nchat_signal_sessions(device_id);
CREATE INDEX idx_signal_sessions_peer ON nchat_signal_sessions(peer_user_id, peer_device_id);
CREATE INDEX idx_signal_sessions_active ON nchat_signal_sessions(device_id, is_active);
CREATE INDEX idx_signal_sessions_last_message ON nchat_signal_sessions(last_message_at)
    WHERE is_active = TRUE;

-- 6. nchat_safety_numbers
CREATE TABLE nchat_safety_numbers (
    id SERIAL PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES nchat_users(id) ON DELETE CASCADE,
    peer_user_id UUID NOT NULL REFERENCES nchat_users(id) ON DELETE CASCADE,
    safety_number TEXT NOT NULL,  -- 60 digits
    verified_at TIMESTAMP WITH TIME ZONE,
    verification_method TEXT,  -- 'manual', 'qr_code', 'out_of_band'
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    UNIQUE(user_id, peer_user_id),
    CHECK (LENGTH(safety_number) = 60),
    CHECK (verification_method IN ('manual', 'qr_code', 'out_of_band', NULL))
);

CREATE INDEX idx_safety_numbers_user_id ON nchat_safety_numbers(user_id);
CREATE INDEX idx_safety_numbers_peer_user_id ON nchat_safety_numbers(peer_user_id);
CREATE INDEX idx_safety_numbers_verified ON nchat_safety_numbers(user_id, verified_at)
    WHERE verified_at IS NOT NULL;

-- 7. nchat_e2ee_audit_log
CREATE TABLE nchat_e2ee_audit_log (
    id SERIAL PRIMARY KEY,
    event_type TEXT NOT NULL,  -- 'master_key_created', 'device_keys_generated', etc.
    user_id UUID REFERENCES nchat_users(id) ON DELETE SET NULL,
    device_id TEXT,
    metadata JSONB,  -- Additional event metadata (no sensitive data)
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    CHECK (event_type IN (
        'master_key_created',
        'device_keys_generated',
        'session_established',
        'session_destroyed',
        'signed_prekey_rotated',
        'prekeys_replenished',
        'safety_number_verified',
        'safety_number_changed',
        'recovery_code_used'
    ))
);

CREATE INDEX idx_e2ee_audit_log_user_id ON nchat_e2ee_audit_log(user_id);
CREATE INDEX idx_e2ee_audit_log_device_id ON nchat_e2ee_audit_log(device_id);
CREATE INDEX idx_e2ee_audit_log_event_type ON nchat_e2ee_audit_log(event_type);
CREATE INDEX idx_e2ee_audit_log_created_at ON nchat_e2ee_audit_log(created_at DESC);

-- 8. nchat_prekey_bundles (Materialized View)
CREATE MATERIALIZED VIEW nchat_prekey_bundles AS
SELECT
    ik.user_id,
    ik.device_id,
    ik.identity_key_public,
    sp.signed_prekey_id,
    sp.signed_prekey_public,
    sp.signature,
    otp.prekey_id AS one_time_prekey_id,
    otp.prekey_public AS one_time_prekey_public
FROM nchat_identity_keys ik
JOIN nchat_signed_prekeys sp ON ik.device_id = sp.device_id AND sp.is_active = TRUE
LEFT JOIN LATERAL (
    SELECT prekey_id, prekey_public
    FROM nchat_one_time_prekeys
    WHERE device_id = ik.device_id AND is_consumed = FALSE
    ORDER BY created_at ASC
    LIMIT 1
) otp ON TRUE;

CREATE UNIQUE INDEX idx_prekey_bundles_device ON nchat_prekey_bundles(device_id);
CREATE INDEX idx_prekey_bundles_user ON nchat_prekey_bundles(user_id);

-- Refresh function (called automatically when keys change)
CREATE OR REPLACE FUNCTION refresh_prekey_bundles()
RETURNS TRIGGER AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY nchat_prekey_bundles;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Triggers to auto-refresh materialized view
CREATE TRIGGER refresh_prekey_bundles_on_identity_key
    AFTER INSERT OR UPDATE OR DELETE ON nchat_identity_keys
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_prekey_bundles();

CREATE TRIGGER refresh_prekey_bundles_on_signed_prekey
    AFTER INSERT OR UPDATE OR DELETE ON nchat_signed_prekeys
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_prekey_bundles();

CREATE TRIGGER refresh_prekey_bundles_on_one_time_prekey
    AFTER INSERT OR UPDATE ON nchat_one_time_prekeys
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_prekey_bundles();

-- Table Modifications 1. nchat_messages
-- Add E2EE support columns
ALTER TABLE nchat_messages
    ADD COLUMN IF NOT EXISTS is_encrypted BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN IF NOT EXISTS encrypted_payload BYTEA,
    ADD COLUMN IF NOT EXISTS sender_device_id TEXT;

-- Add foreign key constraint
ALTER TABLE nchat_messages
    ADD CONSTRAINT fk_messages_sender_device
    FOREIGN KEY (sender_device_id) REFERENCES nchat_identity_keys(device_id)
    ON DELETE SET NULL;

-- Add index for encrypted messages
CREATE INDEX idx_messages_encrypted ON nchat_messages(channel_id, is_encrypted)
    WHERE is_encrypted = TRUE;

-- Add index for device messages
CREATE INDEX idx_messages_sender_device ON nchat_messages(sender_device_id)
    WHERE sender_device_id IS NOT NULL;

-- Table Modifications 2. nchat_channels
-- Add E2EE enforcement option
ALTER TABLE nchat_channels
    ADD COLUMN IF NOT EXISTS enforce_encryption BOOLEAN NOT NULL DEFAULT FALSE;

-- Add index for encrypted channels
CREATE INDEX idx_channels_enforce_encryption ON nchat_channels(enforce_encryption)
    WHERE enforce_encryption = TRUE;

-- COMPLETION (not in the seed document): "The migration script automatically updates the
-- schema_migrations table" (Migration Steps, step 5), and the manual rollback deletes this row.
INSERT INTO schema_migrations (version) VALUES (14);

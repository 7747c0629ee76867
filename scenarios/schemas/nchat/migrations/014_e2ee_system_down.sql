-- Seed 000, "Rollback Procedures", Option 2: Manual Rollback (Advanced), verbatim.

-- Drop E2EE tables in reverse dependency order
DROP MATERIALIZED VIEW IF EXISTS nchat_prekey_bundles CASCADE;
DROP TABLE IF EXISTS nchat_e2ee_audit_log CASCADE;
DROP TABLE IF EXISTS nchat_safety_numbers CASCADE;
DROP TABLE IF EXISTS nchat_signal_sessions CASCADE;
DROP TABLE IF EXISTS nchat_one_time_prekeys CASCADE;
DROP TABLE IF EXISTS nchat_signed_prekeys CASCADE;
DROP TABLE IF EXISTS nchat_identity_keys CASCADE;
DROP TABLE IF EXISTS nchat_user_master_keys CASCADE;

-- Remove columns from nchat_messages
ALTER TABLE nchat_messages
    DROP COLUMN IF EXISTS is_encrypted,
    DROP COLUMN IF EXISTS encrypted_payload,
    DROP COLUMN IF EXISTS sender_device_id;

-- Remove column from nchat_channels
ALTER TABLE nchat_channels
    DROP COLUMN IF EXISTS enforce_encryption;

-- Delete migration record
DELETE FROM schema_migrations WHERE version = 14;

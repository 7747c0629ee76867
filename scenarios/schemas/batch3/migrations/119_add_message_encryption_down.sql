-- Seed 002, Step 3 "Rollback if needed", verbatim.
DROP INDEX IF EXISTS idx_messages_encryption_version;
DROP FUNCTION IF EXISTS get_message_encryption_stats();
ALTER TABLE messages DROP CONSTRAINT IF EXISTS chk_messages_encryption_version_valid;

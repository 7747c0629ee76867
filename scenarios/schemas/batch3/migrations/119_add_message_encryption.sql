-- COMPLETION (not in the seed document): migration 119 (add_message_encryption.sql) is not given
-- by seed 002. The checklist names what it creates: constraint
-- chk_messages_encryption_version_valid "(CHECK encryption_version IN (1, 2))", index
-- idx_messages_encryption_version, function get_message_encryption_stats(). The index's columns
-- and the function's result shape are inferred.

ALTER TABLE messages
    ADD CONSTRAINT chk_messages_encryption_version_valid CHECK (encryption_version IN (1, 2));

CREATE INDEX idx_messages_encryption_version ON messages(encryption_version);

CREATE OR REPLACE FUNCTION get_message_encryption_stats()
RETURNS TABLE (encryption_version INTEGER, message_count BIGINT) AS $$
    SELECT m.encryption_version, COUNT(*)
    FROM messages m
    GROUP BY m.encryption_version
    ORDER BY m.encryption_version;
$$ LANGUAGE sql STABLE;

INSERT INTO schema_migrations (version) VALUES (119) ON CONFLICT DO NOTHING;

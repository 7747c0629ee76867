-- Seed 001, "Performance Optimization / Database Indexes": "Optimized indexes created for
-- high-performance queries". The document gives, verbatim:
--
--   -- Message retrieval optimization
--   CREATE INDEX idx_messages_conversation_timestamp
--   ON "Message" ("conversationId", "timestamp");
--
--   -- User conversation queries
--   CREATE INDEX idx_conversation_participants_user
--   ON "ConversationParticipant" ("userId", "leftAt");
--
--   -- Encryption key lookups
--   CREATE INDEX idx_post_quantum_keys_ratchet_type_active
--   ON "PostQuantumKey" ("ratchetStateId", "keyType", "isActive");
--
-- None of them can run: they name quoted Prisma model tables ("Message",
-- "ConversationParticipant", "PostQuantumKey") while the document's own table list names the
-- tables messages, conversation_participants and post_quantum_keys (42P01: relation "Message"
-- does not exist). The document contradicts itself; expect.toml keeps its claim (these indexes
-- on "Message", ...) and it fails.
--
-- COMPLETION (not in the seed document): the nearest runnable form, the same indexes on the
-- tables the document names, so the pack loads and the workload has its indexes.

-- Message retrieval optimization
CREATE INDEX idx_messages_conversation_timestamp
ON messages ("conversationId", "timestamp");

-- User conversation queries
CREATE INDEX idx_conversation_participants_user
ON conversation_participants ("userId", "leftAt");

-- Encryption key lookups
CREATE INDEX idx_post_quantum_keys_ratchet_type_active
ON post_quantum_keys ("ratchetStateId", "keyType", "isActive");

-- COMPLETION: record the migration as Prisma does.
INSERT INTO "_prisma_migrations" ("id", "checksum", "migration_name", "finished_at", "applied_steps_count")
VALUES ('00000000-0000-0000-0000-000000000002', md5('002_optimized_indexes'), '002_optimized_indexes', NOW(), 1);

-- COMPLETION (not in the seed document): seed 002 (Batch 3 migration execution checklist) gives
-- no SQL for the tables migrations 118/119/122 depend on. Its "Dependency Verification" names
-- `users` (migration 001), `conversations` (018) and `messages` with encryption_version,
-- content_encrypted, content_nonce (104, 113); its smoke tests also use users.is_active,
-- conversations.conversation_type, conversation_members, messages.content,
-- messages.sequence_number with the sequence messages_sequence_number_seq, uuid_generate_v4()
-- and the schema_migrations table. These base migrations hold exactly that, and no more than
-- obvious columns around it.

-- uuid_generate_v4() is used by the document's smoke test 4 (extension uuid-ossp).
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

CREATE TABLE schema_migrations (
    version BIGINT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    email TEXT NOT NULL UNIQUE,
    display_name TEXT,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

INSERT INTO schema_migrations (version) VALUES (1) ON CONFLICT DO NOTHING;

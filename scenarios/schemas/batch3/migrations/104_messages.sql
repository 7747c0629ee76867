-- COMPLETION (not in the seed document): see 001_users.sql. `messages` with the columns smoke
-- test 4 writes (content, sequence_number from messages_sequence_number_seq) and
-- encryption_version ("migrations 104, 113"; existing messages "should have
-- encryption_version = 1").

CREATE TABLE messages (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    conversation_id UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    sender_id UUID REFERENCES users(id) ON DELETE SET NULL,
    content TEXT NOT NULL,
    sequence_number BIGSERIAL NOT NULL,
    encryption_version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_messages_conversation_sequence ON messages(conversation_id, sequence_number);
CREATE INDEX idx_messages_sender_id ON messages(sender_id);

INSERT INTO schema_migrations (version) VALUES (104) ON CONFLICT DO NOTHING;

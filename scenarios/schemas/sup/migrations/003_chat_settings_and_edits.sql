-- COMPLETION (not in the seed document): 003_chat_settings_and_edits.sql, "Additional
-- features": chat_settings and message_edits as seed 004 describes them.

CREATE TABLE chat_settings (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    chat_id UUID NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    is_muted BOOLEAN NOT NULL DEFAULT FALSE,
    is_pinned BOOLEAN NOT NULL DEFAULT FALSE,
    is_archived BOOLEAN NOT NULL DEFAULT FALSE,
    notifications_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (user_id, chat_id)
);
CREATE INDEX idx_chat_settings_pinned ON chat_settings(user_id) WHERE is_pinned = TRUE;
CREATE INDEX idx_chat_settings_archived ON chat_settings(user_id) WHERE is_archived = TRUE;
CREATE TRIGGER update_chat_settings_updated_at BEFORE UPDATE ON chat_settings
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE message_edits (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    previous_content_encrypted TEXT NOT NULL,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_message_edits_message_id ON message_edits(message_id);

INSERT INTO schema_migrations (version) VALUES (3);

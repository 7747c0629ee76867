-- COMPLETION (not in the seed document): seed 000 documents only migration 014, which
-- references nchat_users and alters nchat_messages / nchat_channels (created by earlier nChat
-- migrations the document does not show). These are the smallest base tables 014 needs to run:
-- the columns 014 and its verification queries use (id, channel_id), plus a few obvious ones.
-- The document also queries and deletes from schema_migrations (prerequisites, step 5 and the
-- manual rollback), so that table is here too.

CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,
    executed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE TABLE nchat_users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    username TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE TABLE nchat_channels (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE TABLE nchat_messages (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id UUID NOT NULL REFERENCES nchat_channels(id) ON DELETE CASCADE,
    user_id UUID REFERENCES nchat_users(id) ON DELETE SET NULL,
    content TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX nchat_messages_channel_created ON nchat_messages(channel_id, created_at);
CREATE INDEX nchat_messages_user_id ON nchat_messages(user_id);

-- COMPLETION (not in the seed document): record this base migration like nChat's runner does.
INSERT INTO schema_migrations (version) VALUES (1);

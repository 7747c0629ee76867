-- COMPLETION (not in the seed document): 002_search_indexes.sql, "Full-text search",
-- reconstructed from seed 004's "Full-Text Search" and "Indexes Summary": users.search_vector
-- (username A, bio B, email C), chats.search_vector (name A, description B), both GIN; username
-- and chat name with text_pattern_ops. Stored generated columns keep the vectors current.

ALTER TABLE users ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(username, '')), 'A') ||
    setweight(to_tsvector('english', coalesce(bio, '')), 'B') ||
    setweight(to_tsvector('english', coalesce(email, '')), 'C')
) STORED;

ALTER TABLE chats ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(name, '')), 'A') ||
    setweight(to_tsvector('english', coalesce(description, '')), 'B')
) STORED;

CREATE INDEX idx_users_search_vector ON users USING GIN (search_vector);
CREATE INDEX idx_chats_search_vector ON chats USING GIN (search_vector);
CREATE INDEX idx_users_username_pattern ON users (username text_pattern_ops);
CREATE INDEX idx_chats_name_pattern ON chats (name text_pattern_ops);

INSERT INTO schema_migrations (version) VALUES (2);

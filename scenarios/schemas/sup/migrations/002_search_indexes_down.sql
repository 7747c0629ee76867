-- COMPLETION (not in the seed document): rollback of 002 ("Every migration has corresponding *_down.sql").
DROP INDEX IF EXISTS idx_chats_name_pattern;
DROP INDEX IF EXISTS idx_users_username_pattern;
DROP INDEX IF EXISTS idx_chats_search_vector;
DROP INDEX IF EXISTS idx_users_search_vector;
ALTER TABLE chats DROP COLUMN IF EXISTS search_vector;
ALTER TABLE users DROP COLUMN IF EXISTS search_vector;
DELETE FROM schema_migrations WHERE version = 2;

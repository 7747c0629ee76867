-- COMPLETION (not in the seed document): rollback of 003 ("Every migration has corresponding *_down.sql").
DROP TABLE IF EXISTS message_edits;
DROP TABLE IF EXISTS chat_settings;
DELETE FROM schema_migrations WHERE version = 3;

-- COMPLETION (not in the seed document): rollback of 000 ("Every migration has corresponding *_down.sql").
DROP FUNCTION IF EXISTS update_updated_at_column();
DROP TABLE IF EXISTS schema_migrations;

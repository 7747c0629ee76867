-- Seed 002, Step 2 "Rollback if needed", verbatim.
DROP TABLE IF EXISTS oauth_connections CASCADE;
DROP FUNCTION IF EXISTS count_old_oauth_tokens();
DROP FUNCTION IF EXISTS update_oauth_connections_updated_at();

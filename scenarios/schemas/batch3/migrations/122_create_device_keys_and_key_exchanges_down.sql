-- Seed 002, Step 4 "Rollback if needed", verbatim.
DROP TABLE IF EXISTS key_exchanges CASCADE;
DROP TABLE IF EXISTS device_keys CASCADE;
DROP FUNCTION IF EXISTS get_device_key_stats();
DROP FUNCTION IF EXISTS update_device_keys_updated_at();

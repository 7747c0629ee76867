-- COMPLETION (not in the seed document): seed 004 (SUP Messenger schema documentation) describes
-- the schema in prose and gives no SQL. Its "Migration Strategy" names four migrations, each with
-- a *_down.sql; this pack reconstructs them from the document's schema diagram, "Table Details",
-- "Functions", "Full-Text Search", "Indexes Summary", "Constraints Summary" and "Data Types".
-- Every object below is named or described there; types, delete rules and bodies not stated
-- by the document are inferred (README.md lists them).
--
-- 000_initial_functions.sql: "Functions and extensions". UUID v4 keys use gen_random_uuid(),
-- built into PostgreSQL 13+ (the document targets 16), so no extension is needed.

-- The migration runner's table (the document implies one: ordered migrations with *_down.sql
-- rollbacks); each migration records its version and each rollback removes it.
CREATE TABLE schema_migrations (
    version BIGINT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- "update_updated_at_column(): Automatically updates updated_at timestamp on row modification.
-- Usage: Trigger on UPDATE"
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

INSERT INTO schema_migrations (version) VALUES (0);

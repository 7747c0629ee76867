-- COMPLETION (not in the seed document): migration 118 (oauth_encrypted_tokens.sql) is not
-- given by seed 002; the checklist only names what it must create. This file creates exactly
-- those objects, with the columns its smoke test 1 writes:
--   table oauth_connections; 5 indexes idx_oauth_connections_user_id,
--   idx_oauth_connections_provider, idx_oauth_connections_provider_user_id,
--   idx_oauth_expiring_tokens, idx_oauth_last_refresh; function count_old_oauth_tokens();
--   trigger trigger_oauth_connections_updated_at with function
--   update_oauth_connections_updated_at() (both named by the rollback SQL);
--   legacy columns access_token_hash / refresh_token_hash ("Plan for deprecating legacy
--   access_token_hash/refresh_token_hash columns").
-- Everything else (types, nullability, which index is unique, the function's meaning) is inferred.

CREATE TABLE oauth_connections (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    email TEXT,
    access_token_hash TEXT,
    refresh_token_hash TEXT,
    access_token_encrypted BYTEA,
    refresh_token_encrypted BYTEA,
    tokens_encrypted BOOLEAN NOT NULL DEFAULT FALSE,
    token_expires_at TIMESTAMPTZ,
    last_refreshed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_oauth_connections_user_id ON oauth_connections(user_id);
CREATE INDEX idx_oauth_connections_provider ON oauth_connections(provider);
CREATE UNIQUE INDEX idx_oauth_connections_provider_user_id ON oauth_connections(provider, provider_user_id);
CREATE INDEX idx_oauth_expiring_tokens ON oauth_connections(token_expires_at)
    WHERE refresh_token_encrypted IS NOT NULL;
CREATE INDEX idx_oauth_last_refresh ON oauth_connections(last_refreshed_at);

-- Connections still holding legacy (unencrypted-era) tokens: the re-authentication progress.
CREATE OR REPLACE FUNCTION count_old_oauth_tokens()
RETURNS TABLE (provider TEXT, old_tokens BIGINT) AS $$
    SELECT oc.provider, COUNT(*)
    FROM oauth_connections oc
    WHERE NOT oc.tokens_encrypted
    GROUP BY oc.provider
    ORDER BY oc.provider;
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION update_oauth_connections_updated_at()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trigger_oauth_connections_updated_at
    BEFORE UPDATE ON oauth_connections
    FOR EACH ROW EXECUTE FUNCTION update_oauth_connections_updated_at();

INSERT INTO schema_migrations (version) VALUES (118) ON CONFLICT DO NOTHING;

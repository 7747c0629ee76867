-- COMPLETION (not in the seed document): see 001_users.sql. The ciphertext columns the document
-- says messages has before Batch 3 ("content_encrypted, content_nonce columns (migrations 104, 113)").

ALTER TABLE messages
    ADD COLUMN content_encrypted BYTEA,
    ADD COLUMN content_nonce BYTEA;

INSERT INTO schema_migrations (version) VALUES (113) ON CONFLICT DO NOTHING;

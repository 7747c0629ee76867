-- COMPLETION (not in the seed document): seed 001 (chat-app database README,
-- 001_a8eb79bb17f7e2df.txt) gives no CREATE TABLE statements: it names 16 of its "23" tables and
-- shows three CREATE INDEX statements. This migration creates the 16 named tables with the
-- snake_case names the document lists, and columns in Prisma's default camelCase (the index SQL
-- uses "conversationId", "timestamp", "userId", "leftAt", "ratchetStateId", "keyType",
-- "isActive"; the message API uses text / senderId / conversationId; ids like "user123" and
-- "conv456" are strings). Everything else - every other column, every type, key, foreign key
-- and delete rule - is INFERRED (README.md says exactly what). Types follow what Prisma emits
-- for PostgreSQL (TEXT ids, TIMESTAMP(3)).

-- Prisma's migration table, so that re-applying a migration is refused as Prisma does.
CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY,
    "checksum" VARCHAR(64) NOT NULL,
    "migration_name" VARCHAR(255) NOT NULL UNIQUE,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    "finished_at" TIMESTAMPTZ,
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
);

-- Users & Authentication
CREATE TABLE users (
    "id" TEXT PRIMARY KEY,
    "username" TEXT NOT NULL UNIQUE,
    "email" TEXT UNIQUE,
    "displayName" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Messaging
CREATE TABLE conversations (
    "id" TEXT PRIMARY KEY,
    "name" TEXT,
    "type" TEXT NOT NULL DEFAULT 'direct',
    "encryptionMode" TEXT NOT NULL DEFAULT 'PFS',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE conversation_participants (
    "id" TEXT PRIMARY KEY,
    "conversationId" TEXT NOT NULL REFERENCES conversations("id") ON DELETE CASCADE,
    "userId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "role" TEXT NOT NULL DEFAULT 'member',
    "joinedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "leftAt" TIMESTAMP(3),
    UNIQUE ("conversationId", "userId")
);

CREATE TABLE messages (
    "id" TEXT PRIMARY KEY,
    "conversationId" TEXT NOT NULL REFERENCES conversations("id") ON DELETE CASCADE,
    "senderId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "text" TEXT,
    "encryptedContent" TEXT,
    "encryptionMode" TEXT,
    "replyToId" TEXT REFERENCES messages("id") ON DELETE SET NULL,
    "timestamp" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Media
CREATE TABLE message_files (
    "id" TEXT PRIMARY KEY,
    "messageId" TEXT NOT NULL REFERENCES messages("id") ON DELETE CASCADE,
    "fileName" TEXT NOT NULL,
    "mimeType" TEXT NOT NULL,
    "size" INTEGER NOT NULL,
    "url" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX message_files_messageId_idx ON message_files("messageId");

CREATE TABLE message_reactions (
    "id" TEXT PRIMARY KEY,
    "messageId" TEXT NOT NULL REFERENCES messages("id") ON DELETE CASCADE,
    "userId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "emoji" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE ("messageId", "userId", "emoji")
);

CREATE TABLE read_receipts (
    "id" TEXT PRIMARY KEY,
    "messageId" TEXT NOT NULL REFERENCES messages("id") ON DELETE CASCADE,
    "userId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "readAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE ("messageId", "userId")
);

-- Encryption
CREATE TABLE conversation_keys (
    "id" TEXT PRIMARY KEY,
    "conversationId" TEXT NOT NULL REFERENCES conversations("id") ON DELETE CASCADE,
    "userId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "encryptedKey" TEXT NOT NULL,
    "keyVersion" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE ("conversationId", "userId", "keyVersion")
);

CREATE TABLE conversation_ratchet_states (
    "id" TEXT PRIMARY KEY,
    "conversationId" TEXT NOT NULL REFERENCES conversations("id") ON DELETE CASCADE,
    "userId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "encryptedState" TEXT NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE ("conversationId", "userId")
);

CREATE TABLE post_quantum_keys (
    "id" TEXT PRIMARY KEY,
    "ratchetStateId" TEXT NOT NULL REFERENCES conversation_ratchet_states("id") ON DELETE CASCADE,
    "keyType" TEXT NOT NULL,
    "publicKey" TEXT NOT NULL,
    "encryptedPrivateKey" TEXT NOT NULL,
    "isActive" BOOLEAN NOT NULL DEFAULT TRUE,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Multi-Device
CREATE TABLE device_identities (
    "id" TEXT PRIMARY KEY,
    "userId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "deviceId" TEXT NOT NULL,
    "identityPublicKey" TEXT NOT NULL,
    "signingPublicKey" TEXT NOT NULL,
    "isActive" BOOLEAN NOT NULL DEFAULT TRUE,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeenAt" TIMESTAMP(3),
    UNIQUE ("userId", "deviceId")
);

CREATE TABLE key_sync_packages (
    "id" TEXT PRIMARY KEY,
    "fromDeviceId" TEXT NOT NULL REFERENCES device_identities("id") ON DELETE CASCADE,
    "toDeviceId" TEXT NOT NULL REFERENCES device_identities("id") ON DELETE CASCADE,
    "encryptedPackage" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "consumedAt" TIMESTAMP(3)
);
CREATE INDEX key_sync_packages_toDeviceId_idx ON key_sync_packages("toDeviceId");
CREATE INDEX key_sync_packages_fromDeviceId_idx ON key_sync_packages("fromDeviceId");

CREATE TABLE authentication_sessions (
    "id" TEXT PRIMARY KEY,
    "userId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "deviceIdentityId" TEXT REFERENCES device_identities("id") ON DELETE CASCADE,
    "token" TEXT NOT NULL UNIQUE,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX authentication_sessions_userId_idx ON authentication_sessions("userId");
CREATE INDEX authentication_sessions_deviceIdentityId_idx ON authentication_sessions("deviceIdentityId");

-- Advanced Features
CREATE TABLE algorithm_negotiations (
    "id" TEXT PRIMARY KEY,
    "conversationId" TEXT NOT NULL REFERENCES conversations("id") ON DELETE CASCADE,
    "proposedAlgorithms" TEXT[] NOT NULL,
    "selectedAlgorithm" TEXT,
    "negotiatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX algorithm_negotiations_conversationId_idx ON algorithm_negotiations("conversationId");

CREATE TABLE crypto_migrations (
    "id" TEXT PRIMARY KEY,
    "conversationId" TEXT NOT NULL REFERENCES conversations("id") ON DELETE CASCADE,
    "fromAlgorithm" TEXT NOT NULL,
    "toAlgorithm" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMP(3)
);
CREATE INDEX crypto_migrations_conversationId_idx ON crypto_migrations("conversationId");

CREATE TABLE key_conflicts (
    "id" TEXT PRIMARY KEY,
    "userId" TEXT NOT NULL REFERENCES users("id") ON DELETE CASCADE,
    "deviceIdentityId" TEXT REFERENCES device_identities("id") ON DELETE CASCADE,
    "conflictType" TEXT NOT NULL,
    "resolution" TEXT,
    "detectedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "resolvedAt" TIMESTAMP(3)
);
CREATE INDEX key_conflicts_userId_idx ON key_conflicts("userId");
CREATE INDEX key_conflicts_deviceIdentityId_idx ON key_conflicts("deviceIdentityId");

INSERT INTO "_prisma_migrations" ("id", "checksum", "migration_name", "finished_at", "applied_steps_count")
VALUES ('00000000-0000-0000-0000-000000000001', md5('001_prisma_schema'), '001_prisma_schema', NOW(), 1);

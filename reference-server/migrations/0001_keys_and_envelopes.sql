-- Reference server schema, version 1: users, devices, their keys, message envelopes, and an
-- audit log of key events.
--
-- Deliberate differences from the seed schemas (../shared/seeds/):
-- * No private key material of any kind is stored (one seed stores "encrypted" private prekeys).
-- * One-time prekeys are deleted when claimed, not flagged: a flag leaves a window in which two
--   readers both see "unconsumed", and the table only grows.
-- * Bundles are read live in one statement; no materialized view refreshed by triggers (stale
--   and a global lock on every prekey insert).
-- * Every key and signature has its exact length as a CHECK on octet_length; a NULL can never
--   satisfy a CHECK by accident because every checked column is NOT NULL.
-- * The NOTIFY payload is only the recipient device's row id and the envelope id; the listener
--   reads the envelope itself (payloads are capped at 8000 bytes and cross every session).

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    -- Device ids are handed out from this counter and never reused, so a removed device's id
    -- can never be mistaken for a new device by a peer holding an old session.
    next_device_id  integer NOT NULL DEFAULT 2 CHECK (next_device_id BETWEEN 2 AND 2147483647),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    -- Surrogate key: the foreign-key target for keys and envelopes (8 bytes instead of 20).
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Removing a user removes its devices, their keys and their queued envelopes.
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The device number the API speaks: 1, 2, 3, ... per user.
    device_id        integer NOT NULL CHECK (device_id >= 1),
    registration_id  integer NOT NULL CHECK (registration_id BETWEEN 1 AND 16380),
    identity_key     bytea NOT NULL CHECK (octet_length(identity_key) = 32),
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash       bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    -- Also the index for "all devices of a user" (bundle fetch, send, device list).
    CONSTRAINT devices_user_device_key UNIQUE (user_id, device_id),
    -- Also the index for authentication.
    CONSTRAINT devices_token_hash_key UNIQUE (token_hash)
);

CREATE TABLE signed_prekeys (
    device      bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    key_id      bigint NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
    public_key  bytea NOT NULL CHECK (octet_length(public_key) = 32),
    -- Ed25519 over 0x05 || public_key, verified by the server before insert.
    signature   bytea NOT NULL CHECK (octet_length(signature) = 64),
    active      boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- When a newer key replaced it; it is kept for the grace period, then deleted.
    retired_at  timestamptz,
    -- The primary key's leading column indexes the foreign key.
    PRIMARY KEY (device, key_id),
    CONSTRAINT signed_prekeys_retired_iff_inactive CHECK (active = (retired_at IS NULL))
);
-- At most one active signed prekey per device; also the index the bundle read uses.
CREATE UNIQUE INDEX signed_prekeys_one_active ON signed_prekeys (device) WHERE active;

CREATE TABLE one_time_prekeys (
    device      bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    key_id      bigint NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),
    public_key  bytea NOT NULL CHECK (octet_length(public_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Unique per device and key id; the leading column indexes the foreign key and serves
    -- the claim (lowest key id first) and the count.
    PRIMARY KEY (device, key_id)
);

-- One row per logical message per recipient user: the idempotency record. It outlives its
-- envelopes (which are deleted on acknowledgement) so a late resend is still recognised.
CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      uuid NOT NULL,
    -- The sender's address as it was when sending; deliberately no foreign key: removing the
    -- sender's device must not take back what it already sent.
    sender_user     uuid NOT NULL,
    sender_device   integer NOT NULL CHECK (sender_device >= 1),
    recipient_user  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_idempotency_key UNIQUE (sender_user, sender_device, message_id, recipient_user)
);
CREATE INDEX messages_recipient_user_idx ON messages (recipient_user);

CREATE TABLE envelopes (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message           bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- Queued envelopes go with the device they were addressed to.
    recipient_device  bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('prekey', 'ratchet')),
    header            bytea NOT NULL CHECK (octet_length(header) BETWEEN 1 AND 1024),
    ciphertext        bytea NOT NULL CHECK (octet_length(ciphertext) BETWEEN 1 AND 65536),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- First time the server handed it to the device (WebSocket push or poll); NULL = queued.
    delivered_at      timestamptz,
    CONSTRAINT delivered_after_created CHECK (delivered_at IS NULL OR delivered_at >= created_at),
    -- One envelope per recipient device per logical message; leading column indexes the FK.
    CONSTRAINT envelopes_message_device_key UNIQUE (message, recipient_device)
);
-- The queue read (oldest first, after a cursor), the acknowledgement and the FK.
CREATE INDEX envelopes_recipient_queue_idx ON envelopes (recipient_device, id);

-- Real-time delivery: every server instance LISTENs on this channel and routes by device.
CREATE FUNCTION envelopes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('envelopes', NEW.recipient_device::text || ':' || NEW.id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER envelopes_notify_insert AFTER INSERT ON envelopes
    FOR EACH ROW EXECUTE FUNCTION envelopes_notify();

-- Audit log of key events. Deliberately no foreign keys: the trail must survive the removal of
-- the device or user it describes.
CREATE TABLE key_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL,
    device_id   integer NOT NULL CHECK (device_id >= 1),
    kind        text NOT NULL CHECK (kind IN (
                    'keys_uploaded', 'prekeys_replenished', 'signed_prekey_rotated',
                    'device_added', 'device_removed')),
    -- Small facts about the event (key ids, counts); never key material.
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(detail) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- The history of one device or user, newest last.
CREATE INDEX key_events_user_device_idx ON key_events (user_id, device_id, id);

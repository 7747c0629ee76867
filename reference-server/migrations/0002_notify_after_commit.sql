-- Reference server schema, version 2: notifications that cost no commit its place in line.
--
-- 1. New envelopes are announced by the server after the send has committed, no longer by a
--    trigger inside the send's transaction. A transaction that NOTIFYs takes PostgreSQL's
--    global notification lock before its commit and holds it until its commit record is
--    flushed to disk, so every send committed alone, one WAL flush after another, and sends
--    never shared a flush (group commit) with each other: at a few hundred sends a second the
--    lock was the queue everything waited in. The server's own notification runs as a
--    separate statement on the same connection right after the send (pipelined: no extra
--    round trip) and writes nothing, so it needs no flush and holds the lock for microseconds.
--    Payload: the recipient device's row id. Envelopes inserted by other means than the API
--    are found at the device's next wake-up or reconnect.
-- 2. Servers remember which device a bearer token belongs to (the token hash never changes
--    while the device exists), so authenticated requests cost one round trip instead of two.
--    The only event that invalidates a token is the deletion of its device, through the API or
--    any other path (a cascade from users, an administrator's DELETE): every such deletion
--    notifies `devices_removed` with the device row id, and every instance evicts that token.
--    Deletions are rare, so this trigger's share of the lock does not matter.

DROP TRIGGER envelopes_notify_insert ON envelopes;
DROP FUNCTION envelopes_notify();

CREATE FUNCTION devices_removed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('devices_removed', OLD.id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER devices_removed_notify_delete AFTER DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_removed_notify();

-- Audit integrity (issue #18).
--
-- 1. A purge erases only the seqs that its own `retention_purged` event names, and that
--    event is written first. The event's payload is what `verify` checks every erased
--    payload against; `audit_purges` repeats its ranges so the trigger can check them
--    without parsing JSON. Both are append-only.
-- 2. `seal`: an HMAC of (seq, hash) with a key the database does not hold, on the last
--    event of every commit. A forged event at the tail, or a chain re-computed from an
--    altered event, has no valid seal. The seal is not part of the hash (it signs it).

CREATE TABLE audit_purges (
    from_seq  BIGINT PRIMARY KEY,
    to_seq    BIGINT NOT NULL,
    purge_seq BIGINT NOT NULL REFERENCES audit_events (seq),
    CHECK (from_seq <= to_seq AND to_seq < purge_seq)
);

ALTER TABLE audit_events ADD COLUMN seal TEXT;

-- Finding a purge's event when verifying, without reading the whole table twice.
CREATE INDEX audit_events_purges ON audit_events (seq) WHERE kind = 'retention_purged';
-- Reading a page's derived messages back when verifying.
CREATE INDEX messages_event ON messages (event_seq);

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.payload IS NULL
       AND NEW.seq = OLD.seq AND NEW.occurred_at = OLD.occurred_at AND NEW.actor = OLD.actor
       AND NEW.kind = OLD.kind AND NEW.conversation_id IS NOT DISTINCT FROM OLD.conversation_id
       AND NEW.payload_hash = OLD.payload_hash AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
       AND NEW.seal IS NOT DISTINCT FROM OLD.seal
       AND EXISTS (
           SELECT 1 FROM (
               SELECT to_seq FROM audit_purges WHERE from_seq <= OLD.seq ORDER BY from_seq DESC LIMIT 1
           ) named WHERE named.to_seq >= OLD.seq
       )
    THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.payload IS NULL THEN
        RAISE EXCEPTION 'audit_events is append-only (seq % is named by no purge)', OLD.seq;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only (% rejected)', TG_OP;
END;
$$;

CREATE FUNCTION audit_purges_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_purges is append-only (% rejected)', TG_OP;
END;
$$;
CREATE TRIGGER audit_purges_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_purges
    FOR EACH ROW EXECUTE FUNCTION audit_purges_append_only();
CREATE TRIGGER audit_purges_no_truncate
    BEFORE TRUNCATE ON audit_purges
    FOR EACH STATEMENT EXECUTE FUNCTION audit_purges_append_only();

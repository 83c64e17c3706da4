-- SQLite equivalent of migrations/postgres/0003_audit_integrity.sql (see there for why).

CREATE TABLE audit_purges (
    from_seq  INTEGER PRIMARY KEY,
    to_seq    INTEGER NOT NULL,
    purge_seq INTEGER NOT NULL REFERENCES audit_events (seq),
    CHECK (from_seq <= to_seq AND to_seq < purge_seq)
);

ALTER TABLE audit_events ADD COLUMN seal TEXT;

CREATE INDEX audit_events_purges ON audit_events (seq) WHERE kind = 'retention_purged';
CREATE INDEX messages_event ON messages (event_seq);

DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT (
    NEW.payload IS NULL
    AND NEW.seq = OLD.seq AND NEW.occurred_at = OLD.occurred_at AND NEW.actor = OLD.actor
    AND NEW.kind = OLD.kind AND NEW.conversation_id IS OLD.conversation_id
    AND NEW.payload_hash = OLD.payload_hash AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
    AND NEW.seal IS OLD.seal
    AND COALESCE(
        (SELECT to_seq FROM audit_purges WHERE from_seq <= OLD.seq ORDER BY from_seq DESC LIMIT 1) >= OLD.seq,
        0
    )
)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only (UPDATE rejected: only a purge that names the seq may erase its payload)');
END;

CREATE TRIGGER audit_purges_no_update BEFORE UPDATE ON audit_purges
BEGIN
    SELECT RAISE(ABORT, 'audit_purges is append-only (UPDATE rejected)');
END;
CREATE TRIGGER audit_purges_no_delete BEFORE DELETE ON audit_purges
BEGIN
    SELECT RAISE(ABORT, 'audit_purges is append-only (DELETE rejected)');
END;

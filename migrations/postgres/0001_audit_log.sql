-- The append-only audit log is the record of truth; conversations and messages are
-- query tables written in the same transaction as the events they derive from.
-- Identifiers and times are TEXT (UUID, RFC 3339 UTC) so both stores share one format;
-- payloads are the exact canonical JSON that was hashed.

CREATE TABLE audit_events (
    seq             BIGINT PRIMARY KEY,
    occurred_at     TEXT   NOT NULL,
    actor           TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    conversation_id TEXT,
    payload         TEXT,
    payload_hash    TEXT   NOT NULL,
    prev_hash       TEXT   NOT NULL,
    hash            TEXT   NOT NULL
);
CREATE INDEX audit_events_conversation ON audit_events (conversation_id, seq);
CREATE INDEX audit_events_time ON audit_events (occurred_at);

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    lang        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX conversations_created ON conversations (created_at);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    turn            INTEGER NOT NULL,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    mode            TEXT,
    citations       TEXT,
    handoff_reason  TEXT,
    created_at      TEXT NOT NULL,
    event_seq       BIGINT NOT NULL REFERENCES audit_events (seq)
);
CREATE INDEX messages_conversation ON messages (conversation_id, turn);

-- The application never changes or removes an event. The one exception is retention:
-- a purge may erase an old event's payload (set it to NULL) and nothing else. The chain
-- hashes each payload's SHA-256 (payload_hash), which stays, so a purged log still
-- verifies and no content can be altered, only erased in the open.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.payload IS NULL
       AND NEW.seq = OLD.seq AND NEW.occurred_at = OLD.occurred_at AND NEW.actor = OLD.actor
       AND NEW.kind = OLD.kind AND NEW.conversation_id IS NOT DISTINCT FROM OLD.conversation_id
       AND NEW.payload_hash = OLD.payload_hash AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only (% rejected)', TG_OP;
END;
$$;
CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Conversations under legal hold are never purged.
CREATE TABLE legal_holds (
    conversation_id TEXT PRIMARY KEY,
    reason          TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

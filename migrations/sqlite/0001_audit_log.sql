-- SQLite equivalent of migrations/postgres/0001_audit_log.sql (the zero-setup default).

CREATE TABLE audit_events (
    seq             INTEGER PRIMARY KEY,
    occurred_at     TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    conversation_id TEXT,
    payload         TEXT,
    payload_hash    TEXT    NOT NULL,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL
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
    event_seq       INTEGER NOT NULL REFERENCES audit_events (seq)
);
CREATE INDEX messages_conversation ON messages (conversation_id, turn);

-- Only a retention purge may touch an event: erase its payload and nothing else (see the
-- PostgreSQL migration for the reasoning).
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT (
    NEW.payload IS NULL
    AND NEW.seq = OLD.seq AND NEW.occurred_at = OLD.occurred_at AND NEW.actor = OLD.actor
    AND NEW.kind = OLD.kind AND NEW.conversation_id IS OLD.conversation_id
    AND NEW.payload_hash = OLD.payload_hash AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only (UPDATE rejected)');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only (DELETE rejected)');
END;

CREATE TABLE legal_holds (
    conversation_id TEXT PRIMARY KEY,
    reason          TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

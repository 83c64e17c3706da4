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
    payload         TEXT   NOT NULL,
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

-- The application never changes or removes an event; neither may anyone else without
-- disabling this trigger, which itself needs the table owner and shows in the logs.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only (% rejected)', TG_OP;
END;
$$;
CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

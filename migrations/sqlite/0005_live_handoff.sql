-- Live handoff (issue #14). Who answers a conversation now, derived from the state events
-- in the chain (handoff_requested, conversation_claimed, conversation_released,
-- conversation_resolved), with what the queue is ordered by.
ALTER TABLE conversations ADD COLUMN state TEXT NOT NULL DEFAULT 'bot';
ALTER TABLE conversations ADD COLUMN handoff_reason TEXT;
ALTER TABLE conversations ADD COLUMN priority INTEGER;
ALTER TABLE conversations ADD COLUMN queued_at TEXT;
ALTER TABLE conversations ADD COLUMN agent TEXT;
ALTER TABLE conversations ADD COLUMN claimed_at TEXT;
ALTER TABLE conversations ADD COLUMN first_reply_at TEXT;
ALTER TABLE conversations ADD COLUMN outcome TEXT;
-- The event that set the state.
ALTER TABLE conversations ADD COLUMN state_seq INTEGER;
CREATE INDEX conversations_queue ON conversations (priority, queued_at) WHERE state IN ('waiting', 'with_agent');

-- What clients are told after a reply, in order: written with the audit event each derives
-- from (its seq is the row's key), in the same transaction, so every instance re-reads the
-- same ordered events after a notification, a lag or a reconnect with Last-Event-ID.
CREATE TABLE live_events (
    seq             INTEGER PRIMARY KEY REFERENCES audit_events (seq),
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    kind            TEXT NOT NULL,
    data            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX live_events_conversation ON live_events (conversation_id, seq);

-- Replies suggested to colleagues, and what became of each (sent unchanged, edited,
-- discarded).
CREATE TABLE suggestions (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    agent           TEXT NOT NULL,
    text            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    event_seq       INTEGER NOT NULL REFERENCES audit_events (seq),
    outcome         TEXT,
    outcome_seq     INTEGER REFERENCES audit_events (seq)
);
CREATE INDEX suggestions_open ON suggestions (conversation_id) WHERE outcome IS NULL;

-- A colleague may write several messages in one customer turn: turn numbers stay unique
-- for the customer's and the assistant's rows only.
DROP INDEX messages_turn_unique;
CREATE UNIQUE INDEX messages_turn_unique ON messages (conversation_id, turn, role) WHERE role IN ('user', 'assistant');

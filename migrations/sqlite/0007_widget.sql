-- The customer widget (issue #15).
-- The verified customer reference of a conversation, from a signed identity token the bank's
-- own server minted (X-Teller-Identity); set by the conversation's first turn or a later
-- verified turn, and recorded in that turn's message_received event too.
ALTER TABLE conversations ADD COLUMN customer_ref TEXT;
CREATE INDEX conversations_customer ON conversations (customer_ref, created_at) WHERE customer_ref IS NOT NULL;

-- The current rating of each assistant message, derived from its latest feedback_given
-- event (event_seq); every change is a new event, the row only keeps the last one.
CREATE TABLE feedback (
    message_id      TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    rating          TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment         TEXT,
    -- When the current rating was given (retention purges by it, as for messages).
    created_at      TEXT NOT NULL,
    event_seq       INTEGER NOT NULL REFERENCES audit_events (seq)
);
CREATE INDEX feedback_conversation ON feedback (conversation_id);

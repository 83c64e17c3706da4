-- Turn numbers are unique within a conversation, per speaker: an answered turn writes one
-- customer row and one assistant row with its number, so of two turns given the same
-- number (follow-ups sent at once, each numbered from the same history) only the first
-- to commit is recorded; the other's commit fails on this index and the customer is told
-- to send it again. With the cap checked on the number before the commit, the database,
-- not the timing of requests, keeps a conversation within its turn limit.
--
-- Rows written before this index may repeat a number. They are renumbered first, in this
-- query table only: the earliest row of each (conversation, turn, role) keeps its number,
-- and the k-th repeat of turn t moves past the conversation's last turn, the customer's and
-- the assistant's row of one turn to the same new number (a turn's two rows are written
-- together, so their repeats come in the same order). The audit events, the record of
-- truth, are not touched: their payloads keep the numbers the turns were given.
CREATE TEMPORARY TABLE messages_renumbered AS
SELECT id,
       (SELECT MAX(m.turn) FROM messages m WHERE m.conversation_id = repeats.conversation_id)
           + DENSE_RANK() OVER (PARTITION BY conversation_id ORDER BY turn, k) AS turn
FROM (
    SELECT id, conversation_id, turn,
           ROW_NUMBER() OVER (PARTITION BY conversation_id, turn, role ORDER BY event_seq, id) AS k
    FROM messages
) repeats
WHERE k > 1;

UPDATE messages
SET turn = (SELECT r.turn FROM messages_renumbered r WHERE r.id = messages.id)
WHERE id IN (SELECT id FROM messages_renumbered);

DROP TABLE messages_renumbered;

CREATE UNIQUE INDEX messages_turn_unique ON messages (conversation_id, turn, role);
-- The unique index serves every query the old one did (a conversation's rows by turn).
DROP INDEX messages_conversation;

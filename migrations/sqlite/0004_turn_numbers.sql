-- SQLite equivalent of migrations/postgres/0004_turn_numbers.sql (see it for the reasoning):
-- repeated turn numbers of earlier rows are moved past their conversation's last turn, then
-- (conversation_id, turn, role) is made unique.
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
DROP INDEX messages_conversation;

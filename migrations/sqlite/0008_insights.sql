-- Knowledge insights (issue #16): the gap report and the daily charts read a period of
-- assistant replies, ratings and events of a few kinds; without these indexes each read
-- scans the whole table.
CREATE INDEX messages_role_created ON messages (role, created_at);
CREATE INDEX feedback_created ON feedback (created_at);
CREATE INDEX audit_events_kind_time ON audit_events (kind, occurred_at);

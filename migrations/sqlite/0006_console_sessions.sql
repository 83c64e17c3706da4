-- SQLite equivalent of migrations/postgres/0006_console_sessions.sql (see it for the reasoning).
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    token_id    TEXT NOT NULL REFERENCES staff_tokens (id),
    staff_name  TEXT NOT NULL,
    role        TEXT NOT NULL,
    csrf_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    ended_at    TEXT
);

CREATE INDEX console_sessions_token ON console_sessions (token_id);

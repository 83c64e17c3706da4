-- Agent console sessions (issue #14, item 5). A browser signs in once with its staff token
-- and then holds a random session id in an HttpOnly cookie; only a SHA-256 of the id and of
-- the session's CSRF token is kept. The session belongs to the token it was opened with, so
-- revoking the token ends every session of it. Kept in the database (not in a process) so
-- every Teller instance behind a load balancer honours the same sessions. Sign-in and
-- sign-out are also audit events (console_signed_in, console_signed_out).
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

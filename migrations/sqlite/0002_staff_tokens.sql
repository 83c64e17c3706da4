-- SQLite equivalent of migrations/postgres/0002_staff_tokens.sql.
-- revocation sets revoked_at. Creation and revocation are also audit events.
CREATE TABLE staff_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'compliance', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

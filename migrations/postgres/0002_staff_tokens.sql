-- Staff API tokens (agent, compliance, admin). Only a SHA-256 of each token is kept;
-- revocation sets revoked_at. Creation and revocation are also audit events.
CREATE TABLE staff_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'compliance', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

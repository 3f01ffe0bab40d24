-- Endpoints of each app, the messages (one per public event per app), one delivery per
-- message and matching endpoint, and every attempt. Read models of customers, plans and
-- subscriptions let messages carry whole objects.

CREATE TABLE endpoints (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    app_id text NOT NULL,
    url text NOT NULL,
    description text,
    event_types text[],                    -- NULL: every type
    status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    disabled_reason text,
    secret bytea NOT NULL,                 -- sealed with the keyring, bound to the id
    previous_secret bytea,                 -- after a rotation, signs beside the new one
    previous_secret_until timestamptz,
    failing_since timestamptz,             -- first failure since the last success
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX endpoints_by_app ON endpoints (app_id, id);

CREATE TABLE messages (
    id text PRIMARY KEY,                   -- the public event id: the webhook-id header
    tenant_id text NOT NULL,
    app_id text NOT NULL,
    event_type text NOT NULL,
    payload bytea NOT NULL,                -- the exact body every attempt sends
    created_at timestamptz NOT NULL
);
CREATE INDEX messages_by_app ON messages (app_id, id);
CREATE INDEX messages_by_age ON messages (created_at);

CREATE TABLE deliveries (
    message_id text NOT NULL REFERENCES messages ON DELETE CASCADE,
    endpoint_id text NOT NULL REFERENCES endpoints ON DELETE CASCADE,
    tenant_id text NOT NULL,
    app_id text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts int NOT NULL DEFAULT 0,       -- attempts of the current schedule
    manual boolean NOT NULL DEFAULT false, -- a retry asked for: one attempt, no schedule
    next_attempt_at timestamptz,
    leased_until timestamptz,              -- a worker is attempting it until then
    last_attempt_at timestamptz,
    last_response_status int,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (message_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, status);

CREATE TABLE attempts (
    id text PRIMARY KEY,
    message_id text NOT NULL,
    endpoint_id text NOT NULL,
    tenant_id text NOT NULL,
    app_id text NOT NULL,
    attempted_at timestamptz NOT NULL,
    response_status int,
    response_body text,                    -- the first 4 KB
    duration_ms int NOT NULL,
    error text,
    FOREIGN KEY (message_id, endpoint_id) REFERENCES deliveries ON DELETE CASCADE
);
CREATE INDEX attempts_by_message ON attempts (message_id, id);

CREATE TABLE customers (
    id text PRIMARY KEY,
    app_id text NOT NULL,
    body jsonb NOT NULL,
    occurred_at timestamptz NOT NULL       -- the newest event applied
);

CREATE TABLE plans (
    id text PRIMARY KEY,
    app_id text NOT NULL,
    body jsonb NOT NULL,
    version int NOT NULL
);

CREATE TABLE subscriptions (
    id text PRIMARY KEY,
    app_id text NOT NULL,
    body jsonb NOT NULL,
    version int NOT NULL
);

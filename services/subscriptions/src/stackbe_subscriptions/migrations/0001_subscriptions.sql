-- Subscriptions, checkout sessions, payments and the sandbox gateway's state, plus read
-- models of apps, customers and plans built from identity and catalog events.
-- Business times (periods, payments, created_at) are the app's time, which a sandbox
-- test clock may have moved ahead of the wall clock.

CREATE TABLE apps (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    grace_period_days integer NOT NULL,
    gateway text NOT NULL DEFAULT 'sandbox',
    archived boolean NOT NULL DEFAULT false,
    seen_at timestamptz NOT NULL
);

CREATE TABLE customers (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    email text NOT NULL,
    external_id text,
    seen_at timestamptz NOT NULL
);

CREATE TABLE plans (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    product_id text COLLATE "C" NOT NULL,
    name text NOT NULL,
    price_cents bigint NOT NULL,
    currency text NOT NULL,
    interval text NOT NULL,
    interval_count integer NOT NULL,
    trial_days integer NOT NULL,
    status text NOT NULL,
    plan json NOT NULL,
    version integer NOT NULL
);

CREATE TABLE app_clocks (
    app_id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    offset_us bigint NOT NULL DEFAULT 0 CHECK (offset_us >= 0)
);

CREATE TABLE sandbox_behaviors (
    customer_id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    behavior text NOT NULL CHECK (behavior IN ('succeed', 'fail'))
);

CREATE TABLE subscriptions (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    plan_id text COLLATE "C" NOT NULL,
    status text NOT NULL CHECK (
        status IN ('incomplete', 'trialing', 'active', 'past_due', 'paused', 'canceled')
    ),
    anchor timestamptz,
    current_period_start timestamptz,
    current_period_end timestamptz,
    trial_end timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    canceled_at timestamptz,
    paused_at timestamptz,
    resumes_at timestamptz,
    failed_at timestamptz,
    grace_ends_at timestamptz,
    retries integer NOT NULL DEFAULT 0,
    due_cents bigint NOT NULL DEFAULT 0,
    pending_plan_id text COLLATE "C",
    expires_at timestamptz,
    next_action_at timestamptz,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- At most one live subscription per customer per app, whatever races.
CREATE UNIQUE INDEX subscriptions_one_live ON subscriptions (app_id, customer_id)
    WHERE status <> 'canceled';
CREATE INDEX subscriptions_app ON subscriptions (tenant_id, app_id, id);
CREATE INDEX subscriptions_due ON subscriptions (next_action_at) WHERE next_action_at IS NOT NULL;

CREATE TABLE checkout_sessions (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    plan_id text COLLATE "C" NOT NULL,
    success_url text NOT NULL,
    cancel_url text NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'completed')),
    expires_at timestamptz NOT NULL,
    subscription_id text COLLATE "C" REFERENCES subscriptions (id),
    created_at timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX checkout_sessions_app ON checkout_sessions (tenant_id, app_id, id);

CREATE TABLE payments (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    -- A first charge is made before its subscription row is written, in one transaction.
    subscription_id text COLLATE "C" NOT NULL
        REFERENCES subscriptions (id) DEFERRABLE INITIALLY DEFERRED,
    customer_id text COLLATE "C" NOT NULL,
    amount_cents bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    kind text NOT NULL,
    failure_reason text,
    created_at timestamptz NOT NULL
);
CREATE INDEX payments_app ON payments (tenant_id, app_id, id);
CREATE INDEX payments_subscription ON payments (subscription_id, id);

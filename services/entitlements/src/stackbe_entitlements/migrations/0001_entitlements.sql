-- Each customer's projection (what they may use now), built only from identity, catalog
-- and subscription events, and usage counters per billing period.

CREATE TABLE customers (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    external_id text,
    seen_at timestamptz NOT NULL
);
CREATE INDEX customers_external ON customers (app_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE plans (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    name text NOT NULL,
    entitlements json NOT NULL,
    version integer NOT NULL
);

-- The newest version of each subscription (an older event is ignored).
CREATE TABLE subscriptions (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    plan_id text COLLATE "C" NOT NULL,
    status text NOT NULL,
    current_period_start timestamptz,
    current_period_end timestamptz,
    grace_ends_at timestamptz,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);
CREATE INDEX subscriptions_plan ON subscriptions (plan_id) WHERE status <> 'canceled';

CREATE TABLE projections (
    customer_id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    body json NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE usage (
    customer_id text COLLATE "C" NOT NULL,
    metric text NOT NULL,
    period_start timestamptz NOT NULL,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    period_end timestamptz,
    used bigint NOT NULL CHECK (used >= 0),
    limit_reached_at timestamptz,
    PRIMARY KEY (customer_id, metric, period_start)
);

-- Payment gateway connections (a tenant's Stripe accounts) and what StackBE keeps to
-- work with Stripe: the Stripe objects made for its products, plans and customers, the
-- Stripe subscription behind each of its subscriptions, and the Stripe events taken in.

CREATE TABLE gateways (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    type text NOT NULL CHECK (type IN ('stripe')),
    account_id text NOT NULL,
    livemode boolean NOT NULL,
    -- AES-256-GCM under STACKBE_ENCRYPTION_KEY, bound to the id; never returned.
    secret_key bytea NOT NULL,
    webhook_secret bytea,
    key_hint text NOT NULL,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX gateways_tenant ON gateways (tenant_id, id);

-- The app's connection (identity's app.* events carry it); null on the sandbox.
ALTER TABLE apps ADD COLUMN gateway_id text COLLATE "C";
CREATE INDEX apps_gateway ON apps (gateway_id) WHERE gateway_id IS NOT NULL;

-- Products are read for their names when a Stripe Product is made for one.
CREATE TABLE products (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    name text NOT NULL,
    version integer NOT NULL
);

CREATE TABLE stripe_objects (
    gateway_id text COLLATE "C" NOT NULL,
    kind text NOT NULL CHECK (kind IN ('product', 'price', 'customer')),
    local_id text COLLATE "C" NOT NULL,  -- prod_, plan_ or cust_
    stripe_id text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, kind, local_id)
);
CREATE INDEX stripe_objects_by_stripe_id ON stripe_objects (gateway_id, kind, stripe_id);

ALTER TABLE subscriptions ADD COLUMN gateway_id text COLLATE "C";
ALTER TABLE subscriptions ADD COLUMN stripe_subscription_id text;
CREATE UNIQUE INDEX subscriptions_stripe ON subscriptions (gateway_id, stripe_subscription_id)
    WHERE stripe_subscription_id IS NOT NULL;

ALTER TABLE checkout_sessions ADD COLUMN gateway_id text COLLATE "C";
ALTER TABLE checkout_sessions ADD COLUMN stripe_session_id text;
ALTER TABLE checkout_sessions ADD COLUMN url text;  -- Stripe's page; null: the hosted page

ALTER TABLE payments ADD COLUMN stripe_invoice_id text;
CREATE UNIQUE INDEX payments_stripe_invoice_paid ON payments (stripe_invoice_id)
    WHERE stripe_invoice_id IS NOT NULL AND status = 'succeeded';

-- Each Stripe event is processed once: its id is recorded with its effect.
CREATE TABLE stripe_events (
    gateway_id text COLLATE "C" NOT NULL,
    event_id text NOT NULL,
    type text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, event_id)
);

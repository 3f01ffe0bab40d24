-- An app's products and plans. The catalog trusts the gateway's scope for the app and
-- its tenant, so it keeps no copy of apps; every query filters by both.

CREATE TABLE products (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    name text NOT NULL,
    description text,
    metadata jsonb NOT NULL DEFAULT '{}',
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_app ON products (tenant_id, app_id, id);

-- entitlements is json, not jsonb: it keeps the keys in the order the app wrote them.
CREATE TABLE plans (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    product_id text COLLATE "C" NOT NULL REFERENCES products (id),
    name text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    interval text NOT NULL CHECK (interval IN ('day', 'week', 'month', 'year')),
    interval_count integer NOT NULL CHECK (interval_count BETWEEN 1 AND 365),
    trial_days integer NOT NULL CHECK (trial_days BETWEEN 0 AND 730),
    entitlements json NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    gateway_mappings jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deprecated', 'archived')),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deprecated_at timestamptz,
    archived_at timestamptz
);
CREATE INDEX plans_app ON plans (tenant_id, app_id, id);
CREATE INDEX plans_product ON plans (product_id, id);

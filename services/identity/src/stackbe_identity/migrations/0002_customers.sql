-- Customers of an app: email and externalId are unique per app, not across apps.

CREATE TABLE customers (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL REFERENCES tenants (id),
    app_id text COLLATE "C" NOT NULL REFERENCES apps (id),
    email text NOT NULL,
    name text,
    external_id text,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_app_email_key UNIQUE (app_id, email),
    CONSTRAINT customers_app_external_id_key UNIQUE (app_id, external_id)
);
CREATE INDEX customers_app ON customers (tenant_id, app_id, id);

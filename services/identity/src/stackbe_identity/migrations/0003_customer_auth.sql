-- Customer sign-in: per-app settings and one-time links for customers.

ALTER TABLE apps
    ADD COLUMN allowed_redirect_urls text[] NOT NULL DEFAULT '{}',
    ADD COLUMN auto_create_customers boolean NOT NULL DEFAULT false,
    ADD COLUMN customer_session_days int NOT NULL DEFAULT 7;

CREATE TABLE customer_links (
    token_hash text PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL REFERENCES apps (id),
    customer_id text COLLATE "C" NOT NULL REFERENCES customers (id),
    redirect_url text,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

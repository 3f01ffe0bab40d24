-- The customer portal: one-time links an app makes for a customer (POST
-- /v1/portal/sessions), and the browsers signed in with them (a cookie each). Only
-- SHA-256 of each token is kept.
ALTER TABLE apps ADD COLUMN allowed_redirect_urls text[] NOT NULL DEFAULT '{}';

CREATE TABLE portal_links (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    return_url text,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL
);

CREATE TABLE portal_logins (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    cookie_hash bytea NOT NULL UNIQUE,
    return_url text,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);

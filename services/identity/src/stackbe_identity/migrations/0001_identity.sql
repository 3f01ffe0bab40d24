-- Identity: tenants, members, dashboard auth, apps and API keys.

CREATE TABLE tenants (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    owner_email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL REFERENCES tenants (id),
    email text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT members_tenant_email_key UNIQUE (tenant_id, email)
);
CREATE INDEX members_email ON members (email);

CREATE TABLE magic_links (
    token_hash text PRIMARY KEY,
    member_id text COLLATE "C" NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every send attempt, known email or not, for rate limits per email and per IP.
CREATE TABLE magic_link_sends (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    client_ip text,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX magic_link_sends_email ON magic_link_sends (email, sent_at);
CREATE INDEX magic_link_sends_ip ON magic_link_sends (client_ip, sent_at);

-- Opaque refresh tokens; each use spends one and issues the next in the same family.
CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY,
    family_id text COLLATE "C" NOT NULL,
    member_id text COLLATE "C" NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    tenant_id text COLLATE "C" NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE apps (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL REFERENCES tenants (id),
    name text NOT NULL,
    grace_period_days int NOT NULL,
    gateway text NOT NULL DEFAULT 'sandbox',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz
);
CREATE INDEX apps_tenant ON apps (tenant_id, id);

CREATE TABLE api_keys (
    id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL REFERENCES tenants (id),
    app_id text COLLATE "C" REFERENCES apps (id),
    name text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    hint text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, app_id, id);

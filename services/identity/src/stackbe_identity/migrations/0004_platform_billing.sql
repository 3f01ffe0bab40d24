-- StackBE Billing: the platform's own tenant and app, and the app key identity uses to
-- ask the public API about tenants' plans. One row, written by the bootstrap.
CREATE TABLE platform_billing (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    tenant_id text NOT NULL,
    app_id text NOT NULL,
    app_key bytea NOT NULL,                -- sealed with the keyring
    created_at timestamptz NOT NULL DEFAULT now()
);

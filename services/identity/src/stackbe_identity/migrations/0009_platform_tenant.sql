-- platform_billing names the platform's own tenant; it is configuration every tenant's
-- request reads (its plan limits), not a tenant's row: row-level security does not apply.
ALTER TABLE platform_billing RENAME COLUMN tenant_id TO platform_tenant_id;

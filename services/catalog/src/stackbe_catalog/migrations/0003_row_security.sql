-- Row-level security on every table with a tenant column (common/0003_row_security.sql).
SELECT enable_tenant_row_security();

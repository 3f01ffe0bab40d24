-- Row-level security on every table with a tenant column (defence in depth: a query that
-- forgot its tenant filter still cannot reach another tenant's rows).
--
-- A row is visible when the transaction's `stackbe.tenant_id` is its tenant, or `*`
-- (system work: workers, public pages, migrations). Pools set `*` for their sessions;
-- a request made with a tenant's credential narrows it to that tenant for its
-- transaction (SET LOCAL). Unset, nothing is visible. FORCE applies the policy to the
-- tables' owner too; superusers and BYPASSRLS roles are never subject to it, so
-- services log in with a role of their own that is neither.

CREATE FUNCTION tenant_visible(tenant text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT current_setting('stackbe.tenant_id', true) IN ('*', tenant)
$$;

-- Each service calls this in a migration of its own after its tables exist (and again
-- after adding a table with a tenant column); it returns how many tables it covered.
CREATE FUNCTION enable_tenant_row_security() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    n integer := 0;
BEGIN
    FOR t IN
        SELECT c.relname
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind IN ('r', 'p')
          AND a.attname = 'tenant_id'
          AND NOT a.attisdropped
    LOOP
        EXECUTE format(
            'ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', t.relname
        );
        IF NOT EXISTS (
            SELECT 1 FROM pg_policies
            WHERE schemaname = current_schema()
              AND tablename = t.relname
              AND policyname = 'tenant_isolation'
        ) THEN
            EXECUTE format(
                'CREATE POLICY tenant_isolation ON %I '
                'USING (tenant_visible(tenant_id)) WITH CHECK (tenant_visible(tenant_id))',
                t.relname
            );
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

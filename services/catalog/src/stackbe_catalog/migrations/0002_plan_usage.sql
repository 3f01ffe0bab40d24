-- Which plans live subscriptions use, learned from subscription events (newest version
-- wins), so that a plan in use cannot be archived.

CREATE TABLE plan_usage (
    subscription_id text COLLATE "C" PRIMARY KEY,
    tenant_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    plan_id text COLLATE "C" NOT NULL,
    pending_plan_id text COLLATE "C",
    live boolean NOT NULL,
    version integer NOT NULL
);
CREATE INDEX plan_usage_plan ON plan_usage (plan_id) WHERE live;
CREATE INDEX plan_usage_pending ON plan_usage (pending_plan_id) WHERE live;

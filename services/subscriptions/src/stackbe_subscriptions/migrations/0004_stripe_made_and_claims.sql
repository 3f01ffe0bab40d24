-- Which Stripe objects StackBE made (true) and which the tenant named (a plan's own
-- priceId): a price StackBE made for one connection is never taken for another's.
ALTER TABLE stripe_objects ADD COLUMN made boolean NOT NULL DEFAULT true;

-- An app about to move onto a connection (identity asked, its app.updated event is on
-- its way): the connection cannot be deleted meanwhile.
CREATE TABLE gateway_claims (
    gateway_id text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    claimed_at timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, app_id)
);

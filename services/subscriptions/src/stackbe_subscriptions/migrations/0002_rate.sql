-- What the customer pays per period now, so a proration credit never exceeds it.
ALTER TABLE subscriptions ADD COLUMN rate_cents bigint NOT NULL DEFAULT 0;

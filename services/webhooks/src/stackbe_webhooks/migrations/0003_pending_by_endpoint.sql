-- A claim takes each endpoint's oldest due deliveries straight from this index, instead of
-- ranking every due delivery on every claim.
CREATE INDEX deliveries_pending_by_endpoint ON deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';

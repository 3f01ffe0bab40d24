-- Each claim of a delivery gets its own token: only the worker holding the current claim
-- records the attempt's outcome (a worker whose lease ran out changes nothing). A retry
-- asked for while an attempt is in flight is kept until that attempt is recorded.
ALTER TABLE deliveries ADD COLUMN lease_token text;
ALTER TABLE deliveries ADD COLUMN retry_requested boolean NOT NULL DEFAULT false;

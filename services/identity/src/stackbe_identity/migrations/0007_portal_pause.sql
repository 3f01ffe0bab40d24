-- Whether customers may pause and resume their subscription in the customer portal.
ALTER TABLE apps ADD COLUMN portal_pause_enabled boolean NOT NULL DEFAULT false;

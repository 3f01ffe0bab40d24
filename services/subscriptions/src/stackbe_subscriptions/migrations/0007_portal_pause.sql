-- Whether the app lets customers pause and resume in the portal (from identity).
ALTER TABLE apps ADD COLUMN portal_pause_enabled boolean NOT NULL DEFAULT false;

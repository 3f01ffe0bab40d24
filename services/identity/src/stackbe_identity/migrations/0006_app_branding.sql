-- How an app's hosted pages (checkout, customer portal) look: an accent colour (#rrggbb)
-- and a logo (an https URL); both optional.
ALTER TABLE apps ADD COLUMN brand_color text;
ALTER TABLE apps ADD COLUMN logo_url text;

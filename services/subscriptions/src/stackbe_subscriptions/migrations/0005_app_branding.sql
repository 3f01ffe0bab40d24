-- What the hosted pages show of an app: its name, accent colour and logo.
ALTER TABLE apps ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN brand_color text;
ALTER TABLE apps ADD COLUMN logo_url text;

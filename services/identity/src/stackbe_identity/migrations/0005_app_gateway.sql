-- The tenant's payment gateway connection an app takes payments with (gw_..., owned by
-- the subscriptions service); null while the app is on the sandbox gateway.
ALTER TABLE apps ADD COLUMN gateway_id text COLLATE "C";

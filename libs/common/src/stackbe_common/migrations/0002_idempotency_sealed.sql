-- Stored idempotent responses are sealed (AES-256-GCM) as one blob: status, headers, body.
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys DROP COLUMN status_code, DROP COLUMN headers;
ALTER TABLE idempotency_keys RENAME COLUMN body TO sealed_response;

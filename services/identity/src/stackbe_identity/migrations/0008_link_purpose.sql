-- What a customer sign-in link is for: the app's own sign-in ('app') or the customer
-- portal ('portal'). A link is spent only where it was sent for.
ALTER TABLE customer_links ADD COLUMN purpose text NOT NULL DEFAULT 'app'
    CHECK (purpose IN ('app', 'portal'));

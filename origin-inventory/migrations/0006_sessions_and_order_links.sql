-- Access sessions that ended before their token expired (order placed, hold
-- released, visitor left): the origin refuses their tokens without asking
-- Redis. Rows are useless after `expires_at` and are swept.
CREATE TABLE ended_access_sessions (
    jti        text PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 200),
    event_id   uuid NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX ended_access_sessions_expiry ON ended_access_sessions (expires_at);

-- Every order gets an unguessable secret (244 random bits from
-- pg_strong_random): the link `/orders/{number}/{secret}` opens it from any
-- browser, without the waiting room or the buyer's session.
ALTER TABLE orders ADD COLUMN secret text NOT NULL
    DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');

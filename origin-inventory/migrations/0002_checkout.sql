-- Holds, orders, payments and the notification outbox.
--
-- Invariants the schema itself enforces (the application is the first line,
-- these are the last):
--   * a seat has at most one live ticket (tickets_one_per_seat);
--   * a reservation becomes at most one order (orders.reservation_id UNIQUE);
--   * an idempotency key is used for one payment (payments.idempotency_key UNIQUE);
--   * at most one payment per reservation is in flight or succeeded (payments_one_live).

CREATE TABLE reservations (
    id                    uuid PRIMARY KEY,
    event_id              uuid NOT NULL REFERENCES events (id),
    buyer_id              text NOT NULL CHECK (length(buyer_id) BETWEEN 1 AND 200),
    client_reservation_id uuid NOT NULL,
    status                text NOT NULL DEFAULT 'held'
                          CHECK (status IN ('held', 'committed', 'released', 'expired')),
    seat_count            int NOT NULL CHECK (seat_count > 0),
    total_cents           bigint NOT NULL CHECK (total_cents >= 0),
    currency              text NOT NULL,
    expires_at            timestamptz NOT NULL,
    extended              boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (buyer_id, client_reservation_id)
);
CREATE INDEX reservations_expiring ON reservations (expires_at) WHERE status = 'held';
CREATE INDEX reservations_buyer ON reservations (event_id, buyer_id) WHERE status = 'held';

-- The seats a reservation took, with the price at hold time.
CREATE TABLE reservation_seats (
    reservation_id uuid NOT NULL REFERENCES reservations (id),
    seat_id        uuid NOT NULL,
    price_cents    bigint NOT NULL,
    PRIMARY KEY (reservation_id, seat_id)
);

-- Seats a buyer holds or bought per event: one small row per buyer, so the
-- per-buyer limit is enforced under concurrency without touching the event.
CREATE TABLE buyer_tickets (
    event_id uuid NOT NULL REFERENCES events (id),
    buyer_id text NOT NULL,
    tickets  int NOT NULL CHECK (tickets >= 0),
    PRIMARY KEY (event_id, buyer_id)
);

CREATE TABLE payments (
    id                  uuid PRIMARY KEY,
    reservation_id      uuid NOT NULL REFERENCES reservations (id),
    idempotency_key     text NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    -- SHA-256 of the commit request, to tell a replay from a reused key.
    request_hash        bytea NOT NULL,
    provider            text NOT NULL,
    provider_payment_id text,
    payment_method      text NOT NULL,
    billing_name        text NOT NULL,
    billing_email       text NOT NULL,
    amount_cents        bigint NOT NULL,
    currency            text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    failure_code        text,
    -- The answer given for this key, replayed verbatim.
    response_status     int,
    response_body       jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payments_one_live ON payments (reservation_id) WHERE status IN ('pending', 'succeeded');
CREATE INDEX payments_pending ON payments (created_at) WHERE status = 'pending';
CREATE INDEX payments_provider_id ON payments (provider, provider_payment_id);

CREATE TABLE orders (
    id             uuid PRIMARY KEY,
    order_number   text NOT NULL UNIQUE,
    reservation_id uuid NOT NULL UNIQUE REFERENCES reservations (id),
    payment_id     uuid NOT NULL UNIQUE REFERENCES payments (id),
    event_id       uuid NOT NULL REFERENCES events (id),
    buyer_id       text NOT NULL,
    buyer_name     text NOT NULL,
    buyer_email    text NOT NULL,
    total_cents    bigint NOT NULL,
    currency       text NOT NULL,
    status         text NOT NULL DEFAULT 'paid' CHECK (status IN ('paid', 'refunded')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_event ON orders (event_id);

CREATE TABLE tickets (
    id          uuid PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id),
    event_id    uuid NOT NULL REFERENCES events (id),
    seat_id     uuid NOT NULL,
    price_cents bigint NOT NULL,
    -- `<ticket id>.<HMAC>`: verifiable at the door without a database.
    code        text NOT NULL UNIQUE,
    voided      boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX tickets_one_per_seat ON tickets (event_id, seat_id) WHERE NOT voided;
CREATE INDEX tickets_order ON tickets (order_id);

-- Written in the same transaction as the change it announces; delivered
-- later by the outbox worker with retries.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Provider webhook events already processed.
CREATE TABLE webhook_events (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

-- The sandbox payment provider's own ledger: what a real provider would
-- know. Kept apart from `payments` so reconciliation is tested for real.
CREATE TABLE sandbox_charges (
    id              text PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    payment_method  text NOT NULL,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('succeeded', 'declined')),
    decline_code    text,
    refunded        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

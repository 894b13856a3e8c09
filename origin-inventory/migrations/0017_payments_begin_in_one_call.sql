-- A pending payment begins in one call, as a hold and a settle do.
--
-- The statement was the origin's own text (`checkout.rs`); as a function
-- beside `hold_as_planned` and `settle_paid`, an order's whole SQL can be
-- run without the origin: the bench runs it from pgbench to tell what
-- Postgres costs an order from what the origin adds. Unchanged otherwise:
-- the hold is found by its key alone and locked, then its state checked
-- (0016); the gate is checked in the same statement (0012, 0013).
CREATE FUNCTION begin_payment(p_payment uuid, p_reservation uuid, p_key text, p_request_hash bytea, p_provider text,
                              p_payment_method text, p_billing_name text, p_billing_email text, p_buyer text,
                              p_unqueued boolean, p_admitted_session text, p_admitted_event uuid,
                              p_session text, p_session_expires_at double precision)
    RETURNS TABLE (id uuid, reservation_id uuid, event_id uuid, buyer_id text, amount_cents bigint,
                   currency text, payment_method text, billing_name text, billing_email text, seats jsonb)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH hold AS MATERIALIZED (SELECT * FROM reservations WHERE reservations.id = p_reservation FOR UPDATE),
     paying AS (
         INSERT INTO payments (id, reservation_id, idempotency_key, request_hash, provider, amount_cents, currency,
                               payment_method, billing_name, billing_email, access_session,
                               access_session_expires_at)
         SELECT p_payment, r.id, p_key, p_request_hash, p_provider, r.total_cents, r.currency, p_payment_method,
                p_billing_name, p_billing_email, p_session, to_timestamp(p_session_expires_at)
         FROM hold r
         WHERE r.buyer_id = p_buyer AND r.status = 'held' AND r.expires_at > now()
           AND NOT (p_unqueued AND EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id AND e.queue_enabled))
           AND (p_admitted_session IS NULL
                OR (r.event_id = p_admitted_event
                    AND EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id AND e.queue_enabled)
                    AND NOT EXISTS (SELECT 1 FROM ended_access_sessions s WHERE s.jti = p_admitted_session)))
         ON CONFLICT DO NOTHING
         RETURNING payments.id, payments.reservation_id, payments.amount_cents, payments.currency,
                   payments.payment_method, payments.billing_name, payments.billing_email)
    SELECT p.id, p.reservation_id, r.event_id, r.buyer_id, p.amount_cents, p.currency, p.payment_method,
           p.billing_name, p.billing_email, reservation_seats_json(r.id)
    FROM paying p JOIN hold r ON r.id = p.reservation_id;
END
$$;

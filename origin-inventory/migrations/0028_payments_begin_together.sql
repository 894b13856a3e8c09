-- Pending payments begin together: one call, one transaction, for every
-- commit request the origin has waiting at that moment (`beginning.rs`
-- gathers them, as `booking.rs` gathers paid orders for
-- `book_paid_orders`), where `begin_payment` began one.
--
-- The same one statement as `begin_payment` (0017), on every request of
-- the batch: the holds are found by their keys and locked, then each
-- request is checked against its own hold (the buyer's, live, the gate
-- open to it: 0012, 0013) and only those that pass get a payment. A
-- request's outcome never depends on the others in its batch. The slow
-- path (`checkout::begin`, a retried key or a refused hold) calls it with
-- one request, inside its own transaction, so there is one text of it.
CREATE FUNCTION begin_payments(
    p_payments uuid[], p_reservations uuid[], p_keys text[], p_request_hashes bytea[], p_providers text[],
    p_payment_methods text[], p_billing_names text[], p_billing_emails text[], p_buyers text[],
    p_unqueued boolean[], p_admitted_sessions text[], p_admitted_events uuid[],
    p_sessions text[], p_sessions_expire_at double precision[]
) RETURNS TABLE (id uuid, reservation_id uuid, event_id uuid, buyer_id text, amount_cents bigint,
                 currency text, payment_method text, billing_name text, billing_email text, seats jsonb)
    LANGUAGE plpgsql
    -- Every row is found by its key, whatever the array's length or the
    -- tables' size when the plan was kept: as `book_paid_orders` (0027).
    SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
#variable_conflict use_column
BEGIN
    -- A hold some other transaction keeps locked must not stall every
    -- checkout behind it: past this wait the call fails and the origin
    -- begins its payments one by one (as 0027).
    PERFORM set_config('lock_timeout', '2s', true);
    IF cardinality(p_reservations) <> (SELECT count(DISTINCT r) FROM unnest(p_reservations) AS r) THEN
        RAISE EXCEPTION 'a hold twice in one batch' USING ERRCODE = 'SH012';
    END IF;
    RETURN QUERY
    WITH asks AS (
        SELECT * FROM unnest(p_payments, p_reservations, p_keys, p_request_hashes, p_providers, p_payment_methods,
                             p_billing_names, p_billing_emails, p_buyers, p_unqueued, p_admitted_sessions,
                             p_admitted_events, p_sessions, p_sessions_expire_at)
            AS a(payment, reservation, key, request_hash, provider, payment_method, billing_name, billing_email,
                 buyer, unqueued, admitted_session, admitted_event, session, session_expires_at)),
     -- Locked in one order whatever the batch, as the holds of a booking.
     hold AS MATERIALIZED (
         SELECT * FROM reservations WHERE reservations.id = ANY (p_reservations)
         ORDER BY reservations.id FOR UPDATE),
     paying AS (
         INSERT INTO payments (id, reservation_id, idempotency_key, request_hash, provider, amount_cents, currency,
                               payment_method, billing_name, billing_email, access_session,
                               access_session_expires_at)
         SELECT a.payment, r.id, a.key, a.request_hash, a.provider, r.total_cents, r.currency, a.payment_method,
                a.billing_name, a.billing_email, a.session, to_timestamp(a.session_expires_at)
         FROM asks a JOIN hold r ON r.id = a.reservation
         WHERE r.buyer_id = a.buyer AND r.status = 'held' AND r.expires_at > now()
           AND NOT (a.unqueued AND EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id AND e.queue_enabled))
           AND (a.admitted_session IS NULL
                OR (r.event_id = a.admitted_event
                    AND EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id AND e.queue_enabled)
                    AND NOT EXISTS (SELECT 1 FROM ended_access_sessions s WHERE s.jti = a.admitted_session)))
         ON CONFLICT DO NOTHING
         RETURNING payments.id, payments.reservation_id, payments.amount_cents, payments.currency,
                   payments.payment_method, payments.billing_name, payments.billing_email)
    SELECT p.id, p.reservation_id, r.event_id, r.buyer_id, p.amount_cents, p.currency, p.payment_method,
           p.billing_name, p.billing_email, reservation_seats_json(r.id)
    FROM paying p JOIN hold r ON r.id = p.reservation_id;
END
$$;

DROP FUNCTION begin_payment(uuid, uuid, text, bytea, text, text, text, text, text, boolean, text, uuid, text,
                            double precision);

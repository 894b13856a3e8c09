-- Each step of an order in one round trip, answer included.
--
-- A hold read the event's rules, called hold_seats and read the
-- reservation back; a commit read the payment and the hold again before
-- settling: five round trips (and transactions) that only read. Now
-- hold_as_planned reads the rules, calls hold_seats and returns the
-- reservation as the API shows it, and the statement that records a
-- pending payment returns everything settling needs.
--
-- The origin still plans a hold in Rust (the per-order limit, the hold
-- time), with the limits it last saw for the event, and passes them: if the
-- organizer changed them since, hold_as_planned refuses with SH007 and the
-- current ones, and the origin plans again. New refusal codes:
--   SH006 the event is not on sale;
--   SH007 stale limits (DETAIL: 'max_tickets_per_order,max_tickets_per_buyer,hold_ttl_seconds');
--   SH008 no such event.

-- A reservation's seats as the API shows them, best first. PL/pgSQL, so
-- its plan is kept from call to call (a SQL function with a subquery is
-- neither inlined nor cached: it would be planned at every call).
CREATE FUNCTION reservation_seats_json(p_reservation uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'seat_id', rs.seat_id, 'section', sec.name, 'row', s.row_label, 'number', s.number,
                       'tier', t.name, 'price_cents', rs.price_cents, 'general_admission', sec.general_admission)
                       ORDER BY sec.position, s.row_label, s.number), '[]')
            FROM reservation_seats rs
            JOIN seats s ON s.id = rs.seat_id
            JOIN sections sec ON sec.id = s.section_id
            JOIN price_tiers t ON t.id = s.tier_id
            WHERE rs.reservation_id = p_reservation);
END
$$;

-- A reservation as the API shows it (the origin reads a lapsed hold as
-- expired).
CREATE FUNCTION reservation_view(p_reservation uuid)
    RETURNS TABLE (id uuid, event_id uuid, buyer_id text, status text, total_cents bigint, currency text,
                   expires_at timestamptz, extended boolean, seats jsonb)
    LANGUAGE sql STABLE AS $$
    SELECT r.id, r.event_id, r.buyer_id, r.status, r.total_cents, r.currency, r.expires_at, r.extended,
           reservation_seats_json(r.id)
    FROM reservations r WHERE r.id = p_reservation
$$;

-- 0007's hold_seats, behind the checks of the event's rules, answering with
-- the reservation. p_max_per_order, p_max_per_buyer, p_hold_ttl: the limits
-- the request was planned with.
CREATE FUNCTION hold_as_planned(
    p_event uuid, p_buyer text, p_client_id uuid, p_reservation uuid,
    p_max_per_order int, p_max_per_buyer int, p_hold_ttl int, p_ttl_seconds int,
    p_seats uuid[], p_section uuid, p_tier uuid, p_quantity int, p_wait boolean
) RETURNS TABLE (id uuid, event_id uuid, buyer_id text, status text, total_cents bigint, currency text,
                 expires_at timestamptz, extended boolean, seats jsonb)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    rules record;
BEGIN
    SELECT e.status = 'on_sale' AND coalesce(e.sale_starts_at <= now(), true)
               AND coalesce(e.sale_ends_at > now(), true) AS on_sale,
           e.max_tickets_per_order, e.max_tickets_per_buyer, e.hold_ttl_seconds,
           (SELECT min(t.currency) FROM price_tiers t WHERE t.venue_id = e.venue_id) AS currency
        INTO rules FROM events e WHERE e.id = p_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no_event' USING ERRCODE = 'SH008';
    END IF;
    -- A repeated request is answered with its hold, even after the sale closed.
    IF EXISTS (SELECT 1 FROM reservations r WHERE r.buyer_id = p_buyer AND r.client_reservation_id = p_client_id) THEN
        RAISE EXCEPTION 'duplicate_request' USING ERRCODE = 'SH005';
    END IF;
    IF NOT rules.on_sale THEN
        RAISE EXCEPTION 'sale_not_open' USING ERRCODE = 'SH006';
    END IF;
    IF (rules.max_tickets_per_order, rules.max_tickets_per_buyer, rules.hold_ttl_seconds)
       IS DISTINCT FROM (p_max_per_order, p_max_per_buyer, p_hold_ttl) THEN
        RAISE EXCEPTION 'stale_limits' USING ERRCODE = 'SH007',
            DETAIL = concat_ws(',', rules.max_tickets_per_order, rules.max_tickets_per_buyer, rules.hold_ttl_seconds);
    END IF;
    PERFORM hold_seats(p_event, p_buyer, p_client_id, p_reservation, p_ttl_seconds, p_max_per_buyer, rules.currency,
                       p_seats, p_section, p_tier, p_quantity, p_wait);
    RETURN QUERY SELECT * FROM reservation_view(p_reservation);
END
$$;

-- A pending payment with what settling it needs: its hold's event, buyer
-- and seats. Nothing of it changes once the payment exists. Empty if the
-- payment is not pending.
CREATE FUNCTION pending_payment(p_payment uuid)
    RETURNS TABLE (id uuid, reservation_id uuid, event_id uuid, buyer_id text, amount_cents bigint,
                   currency text, payment_method text, billing_name text, billing_email text, seats jsonb)
    LANGUAGE sql STABLE AS $$
    SELECT p.id, p.reservation_id, r.event_id, r.buyer_id, p.amount_cents, p.currency, p.payment_method,
           p.billing_name, p.billing_email, reservation_seats_json(r.id)
    FROM payments p JOIN reservations r ON r.id = p.reservation_id
    WHERE p.id = p_payment AND p.status = 'pending'
$$;

-- Records the outcomes of several outbox deliveries in one asynchronous
-- commit (see outbox_record, which it replaces): the delivery worker writes
-- together whatever outcomes arrived while its previous write was under way.
-- p_errors[i] NULL means delivered; otherwise the next attempt comes
-- p_retry_after[i] seconds later.
DROP FUNCTION outbox_record(bigint, text, double precision);

CREATE FUNCTION outbox_record_all(p_ids bigint[], p_errors text[], p_retry_after double precision[])
    RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE outbox o
    SET delivered_at = CASE WHEN r.error IS NULL THEN now() END,
        attempts = o.attempts + 1,
        last_error = r.error,
        next_attempt_at = CASE WHEN r.error IS NULL THEN o.next_attempt_at
                               ELSE now() + make_interval(secs => r.retry_after) END
    FROM unnest(p_ids, p_errors, p_retry_after) AS r(id, error, retry_after)
    WHERE o.id = r.id;
END
$$;

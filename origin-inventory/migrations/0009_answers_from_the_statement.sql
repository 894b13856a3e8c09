-- Each step of an order in one round trip, answer included.
--
-- A hold read the event's rules, called hold_seats and read the
-- reservation back; a commit read the payment and the hold again before
-- settling: five round trips (and transactions) that only read. Now
-- hold_seats reads the rules itself and returns the reservation as the API
-- shows it, and the statement that records a pending payment returns
-- everything settling needs.
--
-- The origin still plans a hold in Rust (the per-order limit, the hold
-- time), with the limits it last saw for the event, and passes them: if the
-- organizer changed them since, hold_seats refuses with SH007 and the
-- current ones, and the origin plans again. New refusal codes:
--   SH001 now carries the buyer's limit in DETAIL;
--   SH006 the event is not on sale;
--   SH007 stale limits (DETAIL: 'max_tickets_per_order,hold_ttl_seconds');
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

DROP FUNCTION hold_seats(uuid, text, uuid, uuid, double precision, int, text, uuid[], uuid, uuid, int, boolean);

-- p_max_per_order, p_hold_ttl: the limits the request was planned with.
-- p_seats: chosen seats; or NULL and best available from p_section or
-- p_tier. `now()` is the transaction's start, so the reservation's
-- expires_at equals its seats' held_until.
CREATE FUNCTION hold_seats(
    p_event uuid, p_buyer text, p_client_id uuid, p_reservation uuid,
    p_max_per_order int, p_hold_ttl int, p_ttl_seconds int,
    p_seats uuid[], p_section uuid, p_tier uuid, p_quantity int, p_wait boolean
) RETURNS TABLE (id uuid, event_id uuid, buyer_id text, status text, total_cents bigint, currency text,
                 expires_at timestamptz, extended boolean, seats jsonb)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    rules record;
    wanted int := coalesce(cardinality(p_seats), p_quantity);
    counted int;
    picked uuid[];
    prices bigint[];
    total bigint;
BEGIN
    -- A hold is soft state: lost in a crash, it only frees its seats, and
    -- a commit books nothing it does not find held. So a hold does not
    -- wait for its WAL to reach disk; payments and orders do.
    PERFORM set_config('synchronous_commit', 'off', true);
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
    IF rules.max_tickets_per_order <> p_max_per_order OR rules.hold_ttl_seconds <> p_hold_ttl THEN
        RAISE EXCEPTION 'stale_limits' USING ERRCODE = 'SH007',
            DETAIL = rules.max_tickets_per_order || ',' || rules.hold_ttl_seconds;
    END IF;
    -- The buyer's own lapsed holds must not count against their limit.
    PERFORM expire_lapsed_holds(p_event, p_buyer);
    INSERT INTO buyer_tickets AS b (event_id, buyer_id, tickets) VALUES (p_event, p_buyer, wanted)
        ON CONFLICT (event_id, buyer_id) DO UPDATE SET tickets = b.tickets + EXCLUDED.tickets
        WHERE b.tickets + EXCLUDED.tickets <= rules.max_tickets_per_buyer
        RETURNING tickets INTO counted;
    IF counted IS NULL OR counted > rules.max_tickets_per_buyer THEN
        RAISE EXCEPTION 'buyer_limit' USING ERRCODE = 'SH001', DETAIL = rules.max_tickets_per_buyer::text;
    END IF;

    IF p_seats IS NOT NULL THEN
        picked := ARRAY(SELECT i.seat_id FROM inventory i
                        WHERE i.event_id = p_event AND i.seat_id = ANY (p_seats)
                          AND seat_is_free(i.status, i.held_until)
                        ORDER BY i.seat_id FOR UPDATE);
        IF cardinality(picked) < wanted THEN
            RAISE EXCEPTION 'seats_taken' USING ERRCODE = 'SH002', DETAIL = picked::text;
        END IF;
    ELSE
        picked := pick_best_seats(p_event, p_section, p_tier, wanted, p_wait);
        IF cardinality(picked) < wanted AND NOT p_wait THEN
            -- Rolls back, releasing the locks taken so far, before waiting.
            RAISE EXCEPTION 'short_of_unlocked' USING ERRCODE = 'SH004';
        ELSIF cardinality(picked) < wanted THEN
            RAISE EXCEPTION 'not_enough' USING ERRCODE = 'SH003', DETAIL = cardinality(picked)::text;
        END IF;
    END IF;

    -- The compare-and-swap: every picked seat was free when locked.
    WITH taken AS (
        UPDATE inventory i
        SET status = 'HELD', hold_id = p_reservation, held_until = now() + make_interval(secs => p_ttl_seconds),
            version = i.version + 1
        WHERE i.event_id = p_event AND i.seat_id = ANY (picked)
        RETURNING i.seat_id, i.price_cents)
    SELECT array_agg(seat_id), array_agg(price_cents), sum(price_cents) INTO picked, prices, total FROM taken;

    INSERT INTO reservations (id, event_id, buyer_id, client_reservation_id, seat_count, total_cents, currency, expires_at)
        VALUES (p_reservation, p_event, p_buyer, p_client_id, wanted, total, rules.currency,
                now() + make_interval(secs => p_ttl_seconds))
        ON CONFLICT (buyer_id, client_reservation_id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'duplicate_request' USING ERRCODE = 'SH005';
    END IF;
    INSERT INTO reservation_seats (reservation_id, seat_id, price_cents)
        SELECT p_reservation, seat, price FROM unnest(picked, prices) AS t(seat, price);
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

-- The order path in few round trips.
--
-- Holds in one round trip.
--
-- The origin used to hold seats in a dozen statements, each a round trip,
-- with row locks held while it waited for the next. `hold_seats` does it
-- all on the server in one statement: free the buyer's own lapsed holds,
-- count the tickets against the buyer's limit, take the seats by
-- compare-and-swap, write the reservation. A refusal raises, which rolls
-- all of it back, with a code the origin turns into its answer:
--   SH001 the buyer's limit;
--   SH002 chosen seats not free (DETAIL: the ones that were);
--   SH003 too few free seats in the pool (DETAIL: how many were);
--   SH004 too few *unlocked* free seats: call again with p_wait;
--   SH005 a request with the same client_reservation_id got there first.

-- The one definition of a seat anyone may take: free, or held by a hold
-- that has lapsed (even if the sweeper has not freed it yet).
CREATE FUNCTION seat_is_free(status text, held_until timestamptz) RETURNS boolean
    LANGUAGE sql STABLE
    RETURN status = 'AVAILABLE' OR (status = 'HELD' AND held_until < now());

-- Marks lapsed holds expired and frees what they still hold: of one buyer
-- of one event, or (both NULL) any, at most 500 at a time. Holds with a
-- payment in flight are left to the payment's outcome. Returns how many.
-- PL/pgSQL, so its plans are kept from call to call.
CREATE FUNCTION expire_lapsed_holds(p_event uuid, p_buyer text) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    lapsed uuid[];
    expired bigint;
BEGIN
    IF p_event IS NULL THEN
        lapsed := ARRAY(SELECT r.id FROM reservations r
                        WHERE r.status = 'held' AND r.expires_at < now()
                          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.reservation_id = r.id AND p.status = 'pending')
                        ORDER BY r.expires_at LIMIT 500 FOR UPDATE SKIP LOCKED);
    ELSE
        lapsed := ARRAY(SELECT r.id FROM reservations r
                        WHERE r.status = 'held' AND r.event_id = p_event AND r.buyer_id = p_buyer AND r.expires_at < now()
                          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.reservation_id = r.id AND p.status = 'pending')
                        FOR UPDATE SKIP LOCKED);
    END IF;
    IF cardinality(lapsed) = 0 THEN
        RETURN 0;
    END IF;
    WITH marked AS (
        UPDATE reservations r SET status = 'expired', updated_at = now()
        WHERE r.id = ANY (lapsed)
        RETURNING r.id, r.event_id, r.buyer_id, r.seat_count),
    freed AS (
        UPDATE inventory i SET status = 'AVAILABLE', hold_id = NULL, held_until = NULL, version = i.version + 1
        FROM marked WHERE i.hold_id = marked.id AND i.status = 'HELD'
        RETURNING 1),
    uncounted AS (
        UPDATE buyer_tickets b SET tickets = b.tickets - m.seats
        FROM (SELECT event_id, buyer_id, sum(seat_count)::int AS seats FROM marked GROUP BY 1, 2) m
        WHERE b.event_id = m.event_id AND b.buyer_id = m.buyer_id
        RETURNING 1)
    SELECT count(*) INTO expired FROM marked;
    RETURN expired;
END
$$;

-- Free seats of a section or a tier (whichever is given), best first,
-- locked. Without p_wait, locked seats are skipped: a crowd asking for
-- "any 2 seats" spreads over the free ones instead of queueing. With it,
-- every free seat of the pool is locked in seat_id order (like all
-- locking here, so overlapping requests cannot deadlock) and the best of
-- them are returned: the last seats always sell.
CREATE FUNCTION pick_best_seats(p_event uuid, p_section uuid, p_tier uuid, p_quantity int, p_wait boolean)
    RETURNS uuid[] LANGUAGE plpgsql AS $$
BEGIN
    IF p_section IS NOT NULL AND NOT p_wait THEN
        RETURN ARRAY(SELECT seat_id FROM inventory
                     WHERE event_id = p_event AND section_id = p_section AND seat_is_free(status, held_until)
                     ORDER BY sort_key LIMIT p_quantity FOR UPDATE SKIP LOCKED);
    ELSIF NOT p_wait THEN
        RETURN ARRAY(SELECT seat_id FROM inventory
                     WHERE event_id = p_event AND tier_id = p_tier AND seat_is_free(status, held_until)
                     ORDER BY sort_key LIMIT p_quantity FOR UPDATE SKIP LOCKED);
    ELSIF p_section IS NOT NULL THEN
        RETURN ARRAY(WITH free AS MATERIALIZED (
                         SELECT seat_id, sort_key FROM inventory
                         WHERE event_id = p_event AND section_id = p_section AND seat_is_free(status, held_until)
                         ORDER BY seat_id FOR UPDATE)
                     SELECT seat_id FROM free ORDER BY sort_key LIMIT p_quantity);
    ELSE
        RETURN ARRAY(WITH free AS MATERIALIZED (
                         SELECT seat_id, sort_key FROM inventory
                         WHERE event_id = p_event AND tier_id = p_tier AND seat_is_free(status, held_until)
                         ORDER BY seat_id FOR UPDATE)
                     SELECT seat_id FROM free ORDER BY sort_key LIMIT p_quantity);
    END IF;
END
$$;

-- p_seats: chosen seats; or NULL and best available from p_section or
-- p_tier. `now()` is the transaction's start, so the reservation's
-- expires_at equals its seats' held_until.
CREATE FUNCTION hold_seats(
    p_event uuid, p_buyer text, p_client_id uuid, p_reservation uuid, p_ttl_seconds double precision,
    p_max_per_buyer int, p_currency text,
    p_seats uuid[], p_section uuid, p_tier uuid, p_quantity int, p_wait boolean
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
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
    -- The buyer's own lapsed holds must not count against their limit.
    PERFORM expire_lapsed_holds(p_event, p_buyer);
    INSERT INTO buyer_tickets AS b (event_id, buyer_id, tickets) VALUES (p_event, p_buyer, wanted)
        ON CONFLICT (event_id, buyer_id) DO UPDATE SET tickets = b.tickets + EXCLUDED.tickets
        WHERE b.tickets + EXCLUDED.tickets <= p_max_per_buyer
        RETURNING tickets INTO counted;
    IF counted IS NULL OR counted > p_max_per_buyer THEN
        RAISE EXCEPTION 'buyer_limit' USING ERRCODE = 'SH001';
    END IF;

    IF p_seats IS NOT NULL THEN
        picked := ARRAY(SELECT seat_id FROM inventory
                        WHERE event_id = p_event AND seat_id = ANY (p_seats) AND seat_is_free(status, held_until)
                        ORDER BY seat_id FOR UPDATE);
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
        VALUES (p_reservation, p_event, p_buyer, p_client_id, wanted, total, p_currency,
                now() + make_interval(secs => p_ttl_seconds))
        ON CONFLICT (buyer_id, client_reservation_id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'duplicate_request' USING ERRCODE = 'SH005';
    END IF;
    INSERT INTO reservation_seats (reservation_id, seat_id, price_cents)
        SELECT p_reservation, seat, price FROM unnest(picked, prices) AS t(seat, price);
END
$$;

-- The sandbox payment provider stands for another company's service: its
-- ledger stays out of our WAL (see `SandboxProvider`).
ALTER TABLE sandbox_charges SET UNLOGGED;

-- Settling a charged payment in one statement: book the hold's seats,
-- write the order, its tickets, the answer saved for replays and the
-- notifications, all under the payment's and the hold's row locks. The
-- origin computes what it can beforehand (ticket ids and codes, the
-- order's number, secret and answer). Returns false when the payment was
-- settled meanwhile (by a retry or the reconciler: read its saved answer);
-- raises SH010 when the hold lost seats while the card was charged (the
-- origin refunds).
CREATE FUNCTION settle_paid(
    p_payment uuid, p_provider_id text, p_order uuid, p_number text, p_secret text, p_created_at timestamptz,
    p_ticket_ids uuid[], p_seat_ids uuid[], p_prices bigint[], p_codes text[],
    p_answer jsonb, p_notifications jsonb
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    paying record;
    booked int;
BEGIN
    SELECT p.status, p.reservation_id, r.event_id, r.buyer_id, r.seat_count, p.amount_cents, p.currency,
           p.billing_name, p.billing_email
        INTO paying
        FROM payments p JOIN reservations r ON r.id = p.reservation_id
        WHERE p.id = p_payment FOR UPDATE OF p, r;
    IF paying.status <> 'pending' THEN
        RETURN false;
    END IF;
    UPDATE inventory SET status = 'BOOKED', held_until = NULL, version = version + 1
        WHERE hold_id = paying.reservation_id AND status = 'HELD';
    GET DIAGNOSTICS booked = ROW_COUNT;
    IF booked <> paying.seat_count THEN
        RAISE EXCEPTION 'hold_lost' USING ERRCODE = 'SH010';
    END IF;
    INSERT INTO orders (id, order_number, secret, reservation_id, payment_id, event_id, buyer_id, buyer_name,
                        buyer_email, total_cents, currency, created_at)
        VALUES (p_order, p_number, p_secret, paying.reservation_id, p_payment, paying.event_id, paying.buyer_id,
                paying.billing_name, paying.billing_email, paying.amount_cents, paying.currency, p_created_at);
    INSERT INTO tickets (id, order_id, event_id, seat_id, price_cents, code)
        SELECT ticket, p_order, paying.event_id, seat, price, code
        FROM unnest(p_ticket_ids, p_seat_ids, p_prices, p_codes) AS t(ticket, seat, price, code);
    UPDATE reservations SET status = 'committed', updated_at = now() WHERE id = paying.reservation_id;
    UPDATE payments
        SET status = 'succeeded', provider_payment_id = p_provider_id, failure_code = NULL,
            response_status = 200, response_body = p_answer, updated_at = now()
        WHERE id = p_payment;
    INSERT INTO outbox (kind, payload)
        SELECT n ->> 'kind', n -> 'payload' FROM jsonb_array_elements(p_notifications) AS n;
    RETURN true;
END
$$;

-- Records the outcome of one outbox delivery without waiting for the disk.
-- A record lost in a crash of Postgres (the last moments before it) only
-- sends its message once more, which delivery at least once allows:
-- receivers deduplicate by the message's stable id. p_error NULL means
-- delivered; otherwise the next attempt comes p_retry_after seconds later.
CREATE FUNCTION outbox_record(p_id bigint, p_error text, p_retry_after double precision) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF p_error IS NULL THEN
        UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = p_id;
    ELSE
        UPDATE outbox SET attempts = attempts + 1, last_error = p_error,
                          next_attempt_at = now() + make_interval(secs => p_retry_after)
        WHERE id = p_id;
    END IF;
END
$$;

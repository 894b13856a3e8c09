-- A hold checks the checkout gate itself.
--
-- A checkout step used to begin with its own round trip to learn whether
-- the event is queue-protected (then an access token decides who the
-- buyer is, unless its session has ended) or not (then the buyer session
-- does): two of an order's six transactions. The origin now verifies what
-- the request presents first, and the statement that acts checks the rest
-- in the same transaction as its work, before it reads or writes anything
-- else: with p_unqueued (a buyer session), that the event has no waiting
-- room; with p_session (an access token verified for this event), that it
-- has one and that the token's session has not ended. Otherwise it refuses
-- with SH009 and the origin runs the full gate. Nothing is assumed across
-- transactions, so an organizer turning the waiting room on or off, or a
-- session ending, holds from the next statement on.
DROP FUNCTION hold_as_planned(uuid, text, uuid, uuid, int, int, int, int, uuid[], uuid, uuid, int, boolean);

CREATE FUNCTION hold_as_planned(
    p_event uuid, p_buyer text, p_client_id uuid, p_reservation uuid,
    p_max_per_order int, p_max_per_buyer int, p_hold_ttl int, p_ttl_seconds int,
    p_seats uuid[], p_section uuid, p_tier uuid, p_quantity int, p_wait boolean,
    p_unqueued boolean, p_session text
) RETURNS TABLE (id uuid, event_id uuid, buyer_id text, status text, total_cents bigint, currency text,
                 expires_at timestamptz, extended boolean, seats jsonb)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    rules record;
BEGIN
    SELECT e.status = 'on_sale' AND coalesce(e.sale_starts_at <= now(), true)
               AND coalesce(e.sale_ends_at > now(), true) AS on_sale,
           e.queue_enabled,
           e.max_tickets_per_order, e.max_tickets_per_buyer, e.hold_ttl_seconds,
           (SELECT min(t.currency) FROM price_tiers t WHERE t.venue_id = e.venue_id) AS currency
        INTO rules FROM events e WHERE e.id = p_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no_event' USING ERRCODE = 'SH008';
    END IF;
    IF (p_unqueued AND rules.queue_enabled)
       OR (p_session IS NOT NULL AND (NOT rules.queue_enabled
           OR EXISTS (SELECT 1 FROM ended_access_sessions s WHERE s.jti = p_session))) THEN
        RAISE EXCEPTION 'gate_undecided' USING ERRCODE = 'SH009';
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

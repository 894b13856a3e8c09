-- Paid orders are booked together: one call, one transaction, for every
-- payment the origin has to settle at that moment (`booking.rs` gathers
-- them), where `settle_paid` booked one.
--
-- Under load much of an order's Postgres time was spent per statement and
-- per transaction, not per row (starting each statement's executor,
-- opening its table's indexes, preparing its checks, committing and
-- flushing): the settle ran seven statements and a commit for one order.
-- This function runs the same seven, each on every order of the batch,
-- plus one that locks the held seats before anything is written. On the
-- local stack, in turns with the origin settling each order alone: 16
-- buyers 693 orders/s against 645 (four pairs, 4.8 orders per call), 64
-- buyers 688 against 572 with p99 261 ms against 487 (12 per call; README).
--
-- Each payment gets its own outcome, as `settle_paid` gave:
--   booked       its seats booked, order and tickets written, payment
--                succeeded with its answer saved, notifications queued;
--   not_pending  settled before (by a retry, the reconciler or a webhook):
--                nothing written;
--   hold_lost    its hold lapsed and some of its seats were taken while
--                the card was charged: nothing written (the origin refunds).
-- A payment's outcome never depends on the others in its batch: each is
-- checked under its own locks and only the booked ones are written.
CREATE FUNCTION book_paid_orders(
    p_payments uuid[], p_provider_ids text[], p_orders uuid[], p_numbers text[], p_secrets text[],
    p_created_at timestamptz[], p_answers jsonb[], p_notifications jsonb[],
    p_ticket_payments uuid[], p_ticket_ids uuid[], p_seat_ids uuid[], p_prices bigint[], p_codes text[]
) RETURNS TABLE (payment_id uuid, outcome text) LANGUAGE plpgsql
    -- Its statements take arrays: left to choose, Postgres planned each
    -- afresh at every call for the array's length, and a call of one
    -- order took 2.1 ms instead of 1.4 (auto_explain, the local stack;
    -- its statements ran 0.8 ms either way). A plan kept for every length
    -- is made once per connection, though, from the statistics of that
    -- moment: one made when the sale's tables were small scanned all of
    -- `reservations` once they were not (the test of a buyer among others
    -- paying, `crowds.rs`). Every row here is found by a key, so the kept
    -- plans are made to find them so, whatever the tables' size then.
    SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    pending uuid[];
    holds uuid[];
    booking uuid[];
BEGIN
    -- The origin books one batch at a time: a row some other transaction
    -- keeps locked must not stall every sale behind it. Past this wait
    -- the call fails, and the origin books its orders one by one, where
    -- only the order whose row is locked waits and fails.
    PERFORM set_config('lock_timeout', '2s', true);
    IF cardinality(p_payments) <> (SELECT count(DISTINCT p) FROM unnest(p_payments) AS p) THEN
        RAISE EXCEPTION 'a payment twice in one batch' USING ERRCODE = 'SH011';
    END IF;
    -- Payments, then their holds, in one order whatever the batch: two
    -- batches (or a batch and a lone settle) lock shared rows alike.
    SELECT coalesce(array_agg(l.id) FILTER (WHERE l.status = 'pending'), '{}'),
           coalesce(array_agg(l.reservation_id) FILTER (WHERE l.status = 'pending'), '{}')
        INTO pending, holds
        FROM (SELECT p.id, p.status, p.reservation_id
              FROM payments p JOIN reservations r ON r.id = p.reservation_id
              WHERE p.id = ANY (p_payments) ORDER BY p.id FOR UPDATE OF p, r) l;
    -- The holds that still have every seat. Their seats are locked first:
    -- a lapsed hold's seat may be taken by another buyer at any moment.
    WITH seats AS (SELECT hold_id FROM inventory WHERE hold_id = ANY (holds) AND status = 'HELD' FOR UPDATE)
    SELECT coalesce(array_agg(r.id), '{}') INTO booking
        FROM reservations r
        WHERE r.id = ANY (holds) AND r.seat_count = (SELECT count(*) FROM seats s WHERE s.hold_id = r.id);
    UPDATE inventory SET status = 'BOOKED', held_until = NULL, version = version + 1
        WHERE hold_id = ANY (booking) AND status = 'HELD';
    INSERT INTO orders (id, order_number, secret, reservation_id, payment_id, event_id, buyer_id, buyer_name,
                        buyer_email, total_cents, currency, created_at)
        SELECT o.id, o.number, o.secret, r.id, p.id, r.event_id, r.buyer_id, p.billing_name, p.billing_email,
               p.amount_cents, p.currency, o.created_at
        FROM unnest(p_payments, p_orders, p_numbers, p_secrets, p_created_at)
                 AS o(payment, id, number, secret, created_at)
        JOIN payments p ON p.id = o.payment
        JOIN reservations r ON r.id = p.reservation_id
        WHERE r.id = ANY (booking);
    INSERT INTO tickets (id, order_id, event_id, seat_id, price_cents, code)
        SELECT t.id, o.id, o.event_id, t.seat, t.price, t.code
        FROM unnest(p_ticket_payments, p_ticket_ids, p_seat_ids, p_prices, p_codes) AS t(payment, id, seat, price, code)
        JOIN orders o ON o.payment_id = t.payment
        WHERE o.reservation_id = ANY (booking);
    UPDATE reservations SET status = 'committed', updated_at = now() WHERE id = ANY (booking);
    UPDATE payments p
        SET status = 'succeeded', provider_payment_id = s.provider_id, failure_code = NULL,
            response_status = 200, response_body = s.answer, updated_at = now()
        FROM unnest(p_payments, p_provider_ids, p_answers) AS s(payment, provider_id, answer)
        WHERE p.id = s.payment AND p.reservation_id = ANY (booking);
    INSERT INTO outbox (kind, payload)
        SELECT n ->> 'kind', n -> 'payload'
        FROM unnest(p_payments, p_notifications) AS s(payment, notes)
        JOIN payments p ON p.id = s.payment AND p.reservation_id = ANY (booking),
             jsonb_array_elements(s.notes) AS n;
    RETURN QUERY
        SELECT p.id,
               CASE WHEN p.id <> ALL (pending) THEN 'not_pending'
                    WHEN p.reservation_id = ANY (booking) THEN 'booked'
                    ELSE 'hold_lost' END
        FROM payments p WHERE p.id = ANY (p_payments);
END
$$;

DROP FUNCTION settle_paid(uuid, text, uuid, text, text, timestamptz, uuid[], uuid[], bigint[], text[], jsonb, jsonb);

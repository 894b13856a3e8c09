-- One buyer's statements cost the same however many others hold seats.
--
-- During an on-sale thousands of buyers hold seats at once while they type
-- their card numbers. Three kinds of statement read all of those holds,
-- found by `tests/api/crowds.rs` (one buyer's hold, extension, payment and
-- release, among 600 and then 1,200 others holding):
-- - a best-available pick walked every seat held ahead of it (held seats
--   stay in the pick's index: a hold that lapses is free to take at once),
--   fetching each from the table to read when its hold lapses;
-- - finding a hold's seats (`hold_id = … AND status = 'HELD'`: extend,
--   release, settle, the sweeper) read every held seat through
--   `inventory_expiring`, whose predicate the lookup implies;
-- - looking a reservation or a payment up by its key along with its state
--   (`status = 'held'`, `'pending'`) could scan every live hold or pending
--   payment through the partial index of that state.
-- Postgres picks such a scan whenever the partial index looks small, as it
-- does when statistics were taken before the sale, and keeps the plan.

-- A hold's seats, by the hold: the lookup's own index. Booked seats keep
-- their `hold_id` but no lookup wants them by it. `inventory_expiring`
-- served no query of its own (lapsed holds are found by their
-- reservations) and only competed with this one.
DROP INDEX inventory_hold;
DROP INDEX inventory_expiring;
CREATE INDEX inventory_held_by_hold ON inventory (hold_id) WHERE status = 'HELD';

-- When a seat of a pick's pools can be taken: at once if free, when its
-- hold lapses if held (NULL otherwise). `takeable_from(…) < now()` is
-- `seat_is_free`; as the pick indexes' last key it is checked on the index
-- entry, so a pick steps over seats held by others without reading them.
CREATE FUNCTION takeable_from(status text, held_until timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE
    RETURN CASE status WHEN 'AVAILABLE' THEN '-infinity'::timestamptz WHEN 'HELD' THEN held_until END;

DROP INDEX inventory_free_by_section;
CREATE INDEX inventory_free_by_section ON inventory (event_id, section_id, sort_key, takeable_from(status, held_until))
    WHERE status IN ('AVAILABLE', 'HELD');
DROP INDEX inventory_free_by_tier;
CREATE INDEX inventory_free_by_tier ON inventory (event_id, tier_id, sort_key, takeable_from(status, held_until))
    WHERE status IN ('AVAILABLE', 'HELD');

-- As in 0015, with the lapse checked on the index entry. `status IN (…)`
-- restates what `takeable_from(…) < now()` implies, for Postgres to see
-- that the partial indexes apply.
CREATE OR REPLACE FUNCTION pick_best_seats(p_event uuid, p_section uuid, p_tier uuid, p_quantity int, p_wait boolean)
    RETURNS uuid[] LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    frontier int := coalesce(
        (SELECT f.sort_key FROM pick_frontiers f WHERE f.event_id = p_event AND f.pool = coalesce(p_section, p_tier)),
        -2147483648);
BEGIN
    IF p_section IS NOT NULL AND NOT p_wait THEN
        RETURN ARRAY(SELECT seat_id FROM inventory
                     WHERE event_id = p_event AND section_id = p_section AND sort_key >= frontier
                       AND status IN ('AVAILABLE', 'HELD') AND takeable_from(status, held_until) < now()
                     ORDER BY sort_key LIMIT p_quantity FOR UPDATE SKIP LOCKED);
    ELSIF NOT p_wait THEN
        RETURN ARRAY(SELECT seat_id FROM inventory
                     WHERE event_id = p_event AND tier_id = p_tier AND sort_key >= frontier
                       AND status IN ('AVAILABLE', 'HELD') AND takeable_from(status, held_until) < now()
                     ORDER BY sort_key LIMIT p_quantity FOR UPDATE SKIP LOCKED);
    ELSIF p_section IS NOT NULL THEN
        RETURN ARRAY(WITH free AS MATERIALIZED (
                         SELECT seat_id, sort_key FROM inventory
                         WHERE event_id = p_event AND section_id = p_section AND sort_key >= frontier
                           AND status IN ('AVAILABLE', 'HELD') AND takeable_from(status, held_until) < now()
                         ORDER BY seat_id FOR UPDATE)
                     SELECT seat_id FROM free ORDER BY sort_key LIMIT p_quantity);
    ELSE
        RETURN ARRAY(WITH free AS MATERIALIZED (
                         SELECT seat_id, sort_key FROM inventory
                         WHERE event_id = p_event AND tier_id = p_tier AND sort_key >= frontier
                           AND status IN ('AVAILABLE', 'HELD') AND takeable_from(status, held_until) < now()
                         ORDER BY seat_id FOR UPDATE)
                     SELECT seat_id FROM free ORDER BY sort_key LIMIT p_quantity);
    END IF;
END
$$;

-- As in 0009, the payment found by its key alone, then its state checked.
CREATE OR REPLACE FUNCTION pending_payment(p_payment uuid)
    RETURNS TABLE (id uuid, reservation_id uuid, event_id uuid, buyer_id text, amount_cents bigint,
                   currency text, payment_method text, billing_name text, billing_email text, seats jsonb)
    LANGUAGE sql STABLE AS $$
    WITH p AS MATERIALIZED (SELECT * FROM payments WHERE payments.id = p_payment)
    SELECT p.id, p.reservation_id, r.event_id, r.buyer_id, p.amount_cents, p.currency, p.payment_method,
           p.billing_name, p.billing_email, reservation_seats_json(r.id)
    FROM p JOIN reservations r ON r.id = p.reservation_id
    WHERE p.status = 'pending'
$$;

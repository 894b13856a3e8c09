-- One buyer's statements cost the same however many holds the buyer made
-- before, and however many payments others have under way.
--
-- A returning buyer, or a script retrying holds, leaves a reservation per
-- hold. Lookups read all of them, or every payment under way, or every
-- event's holds (`tests/api/crowds.rs`: a buyer with 150 and then 300
-- ended holds, among 600 and then 1,200 payments under way, read about a
-- buffer more per hold and per payment):
-- - a hold looked up by its key and its buyer (release, extension, the
--   reservation's answer): Postgres answers `id = $1 AND buyer_id = $2`
--   through the unique index on buyer and client id as readily as through
--   the primary key, and then fetches every hold of the buyer;
-- - each hold's check for the buyer's lapsed holds read every reservation
--   of the buyer, of every event, to keep off `reservations_expiring`
--   (0023);
-- - the release's check for a payment under way walked `payments_pending`,
--   every pending payment's entry;
-- - and once no hold was held when statistics were taken (as autovacuum
--   leaves a table between sales), Postgres finds a buyer's held
--   reservations through `reservations_expiring`, the sweeper's index of
--   every held reservation by expiry, as readily as through the buyer's own
--   (`reservations_buyer`): both are partial on `status = 'held'` and look
--   empty. It then walks every event's holds, live, or ended and not yet
--   vacuumed: the event page's lookup of the buyer's running hold, made for
--   every buyer who loads it, and the check above once it no longer reads
--   all the buyer's reservations.
-- As in 0016 and 0023: a row is found by its key alone, and its other
-- columns are checked on the row found; and the sweeper's index now serves
-- only lookups that bound the expiry: its predicate also asks for
-- `expires_at IS NOT NULL` (always true: the column is NOT NULL), which
-- Postgres proves from `expires_at < now()` but not from `status = 'held'`
-- alone.
DROP INDEX reservations_expiring;
CREATE INDEX reservations_expiring ON reservations (expires_at) WHERE status = 'held' AND expires_at IS NOT NULL;

-- Whether a payment of the reservation is under way: found through
-- `payments_one_live`, by the reservation (`OFFSET 0` keeps the state's
-- check out of the lookup, where it would make `payments_pending` a
-- candidate).
CREATE FUNCTION payment_under_way(p_reservation uuid) RETURNS boolean
    LANGUAGE sql STABLE
    RETURN EXISTS (SELECT 1 FROM (SELECT p.status FROM payments p
                                  WHERE p.reservation_id = p_reservation AND p.status IN ('pending', 'succeeded')
                                  OFFSET 0) live
                   WHERE live.status = 'pending');

-- Inlined into its callers: without the fence, a caller's check of the
-- buyer would join the lookup by key.
CREATE OR REPLACE FUNCTION reservation_view(p_reservation uuid)
    RETURNS TABLE (id uuid, event_id uuid, buyer_id text, status text, total_cents bigint, currency text,
                   expires_at timestamptz, extended boolean, seats jsonb)
    LANGUAGE sql STABLE AS $$
    WITH r AS MATERIALIZED (SELECT * FROM reservations WHERE reservations.id = p_reservation)
    SELECT r.id, r.event_id, r.buyer_id, r.status, r.total_cents, r.currency, r.expires_at, r.extended,
           reservation_seats_json(r.id)
    FROM r
$$;

-- 0023's marking of lapsed holds, as a function of its own: what is
-- lapsed is looked up in more than one way, and ends one way.
CREATE FUNCTION expire_holds(p_lapsed uuid[]) RETURNS bigint
    LANGUAGE sql AS $$
    WITH marked AS (
        UPDATE reservations r SET status = 'expired', updated_at = now()
        WHERE r.id = ANY (p_lapsed)
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
    SELECT count(*) FROM marked
$$;

-- 0023's, with the buyer's candidates found through `reservations_buyer`:
-- the buyer's held reservations of this event (and, until vacuum, the held
-- versions of the buyer's holds of this event that ended since), locked by
-- their keys and checked on the versions locked, as before.
CREATE OR REPLACE FUNCTION expire_lapsed_holds(p_event uuid, p_buyer text) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    lapsed uuid[];
BEGIN
    IF p_event IS NULL THEN
        lapsed := ARRAY(SELECT r.id FROM reservations r
                        WHERE r.status = 'held' AND r.expires_at < now()
                          AND NOT payment_under_way(r.id)
                        ORDER BY r.expires_at LIMIT 500 FOR UPDATE SKIP LOCKED);
    ELSE
        lapsed := ARRAY(
            WITH mine AS MATERIALIZED (
                SELECT r.id FROM reservations r
                WHERE r.event_id = p_event AND r.buyer_id = p_buyer AND r.status = 'held'),
            locked AS MATERIALIZED (
                SELECT r.id, r.status, r.expires_at FROM reservations r
                WHERE r.id IN (SELECT m.id FROM mine m)
                FOR UPDATE SKIP LOCKED)
            SELECT l.id FROM locked l
            WHERE l.status = 'held' AND l.expires_at < now() AND NOT payment_under_way(l.id));
    END IF;
    IF cardinality(lapsed) = 0 THEN
        RETURN 0;
    END IF;
    RETURN expire_holds(lapsed);
END
$$;

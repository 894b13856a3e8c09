-- A hold's check for the buyer's own lapsed holds reads the buyer's
-- reservations, not every hold that ended more than a hold's lifetime ago.
--
-- Each hold first expires the buyer's lapsed holds (they must not count
-- against the buyer's limit). That lookup asked for `status = 'held' AND
-- expires_at < now()` with the buyer and event, and Postgres answered it
-- by walking `reservations_expiring` from its start: the index of held
-- reservations, by expiry. A hold that ends (paid, released, expired)
-- leaves its old, held version's entry there until vacuum, and once the
-- hold's lifetime has passed that entry is in the walk's range. The
-- index spans every event: the walk covers every sale's ended holds since
-- the table's last vacuum, which comes when a fifth of it is dead. On the
-- local stack, in a run of orders an hour after earlier ones, every hold
-- read 116 buffers that way until autovacuum came (`tests/api/crowds.rs`
-- reproduces it).
--
-- As in 0016: the buyer's reservations are found by the buyer alone
-- (the unique index on buyer and client id, the one index that applies),
-- locked by their keys alone, and only then is their state checked, on
-- the versions locked. The pending payment is looked for through
-- `payments_one_live`, by its reservation; `OFFSET 0` keeps the check of
-- its state out of that lookup, where it would make `payments_pending`
-- (every pending payment's entry, and the ended ones' until vacuum)
-- another candidate.
CREATE OR REPLACE FUNCTION expire_lapsed_holds(p_event uuid, p_buyer text) RETURNS bigint
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
        lapsed := ARRAY(
            WITH mine AS MATERIALIZED (
                SELECT r.id, r.event_id, r.status, r.expires_at FROM reservations r WHERE r.buyer_id = p_buyer),
            locked AS MATERIALIZED (
                SELECT r.id, r.status, r.expires_at FROM reservations r
                WHERE r.id IN (SELECT m.id FROM mine m
                               WHERE m.status = 'held' AND m.event_id = p_event AND m.expires_at < now())
                FOR UPDATE SKIP LOCKED)
            SELECT l.id FROM locked l
            WHERE l.status = 'held' AND l.expires_at < now()
              AND NOT EXISTS (SELECT 1 FROM (SELECT p.status FROM payments p
                                             WHERE p.reservation_id = l.id AND p.status IN ('pending', 'succeeded')
                                             OFFSET 0) live
                              WHERE live.status = 'pending'));
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

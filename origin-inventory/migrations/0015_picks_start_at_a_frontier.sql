-- Best-available picks start at the pool's frontier, not at its first seat.
--
-- A pick takes the first free seats of a section (or a price tier) in
-- best-first order from `inventory_free_by_section` (`_by_tier`). Each seat
-- sold leaves two entries in that index, for its free and its held
-- versions. Once no snapshot can see those versions, the first scan to
-- pass them marks them dead and later scans step over them. While one
-- snapshot is open (a report, a `pg_dump`), none can be marked, and every
-- pick walked every seat sold so far: 2,034 buffers per pick against 31
-- without the snapshot, selling one section of 2,000 seats, and so for
-- each pick more than the one before.
--
-- A pool's frontier is a sort key below which every seat of the pool is
-- booked or blocked. Picks start there. The invariant holds because:
-- - a background step moves a frontier up to the pool's first seat that is
--   free or held, read in its statement's snapshot, and only if the
--   frontier's `generation` is still the one that snapshot saw;
-- - any change that makes a seat below a frontier takeable again (a
--   refund, a seat added, a seat moved) lowers the frontier in the same
--   transaction and bumps its `generation` (triggers below), so a move up
--   computed before it is refused.
-- Holds and releases happen at or above the frontier (a held seat stops
-- it) and never touch it. So picks stay exact (the best seat free is
-- found) and walk only what changed since the last move up.
CREATE TABLE pick_frontiers (
    event_id   uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- A section's or a price tier's id.
    pool       uuid NOT NULL,
    sort_key   int NOT NULL,
    generation bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, pool)
);

-- Lowers a pool's frontier to p_sort_key (creating it there if missing).
CREATE FUNCTION lower_pick_frontier(p_event uuid, p_pool uuid, p_sort_key int) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO pick_frontiers AS f (event_id, pool, sort_key) VALUES (p_event, p_pool, p_sort_key)
    ON CONFLICT (event_id, pool) DO UPDATE
        SET sort_key = least(f.sort_key, EXCLUDED.sort_key), generation = f.generation + 1
$$;

-- Frontiers are lowered in (event, pool) order, and a freed seat first
-- locks every frontier of its event in that order: two refunds each
-- spanning two sections would otherwise lock them in opposite orders and
-- deadlock.
CREATE FUNCTION lower_frontiers_for_added_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lower_pick_frontier(a.event_id, p.pool, min(a.sort_key))
        FROM added a CROSS JOIN LATERAL (VALUES (a.section_id), (a.tier_id)) AS p (pool)
        GROUP BY a.event_id, p.pool ORDER BY a.event_id, p.pool;
    RETURN NULL;
END
$$;

CREATE TRIGGER inventory_added_lowers_frontiers
    AFTER INSERT ON inventory REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION lower_frontiers_for_added_seats();

CREATE FUNCTION lower_frontiers_for_freed_seat() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM pick_frontiers WHERE event_id = NEW.event_id ORDER BY pool FOR UPDATE;
    PERFORM lower_pick_frontier(NEW.event_id, NEW.section_id, NEW.sort_key);
    PERFORM lower_pick_frontier(NEW.event_id, NEW.tier_id, NEW.sort_key);
    RETURN NULL;
END
$$;

-- Per row, so that the updates of the order path (a hold, its booking, its
-- release) pay only the WHEN test, which they never pass.
CREATE TRIGGER inventory_freed_lowers_frontiers
    AFTER UPDATE ON inventory FOR EACH ROW
    WHEN ((OLD.status IN ('BOOKED', 'BLOCKED') AND NEW.status IN ('AVAILABLE', 'HELD'))
          OR (OLD.sort_key, OLD.section_id, OLD.tier_id) IS DISTINCT FROM (NEW.sort_key, NEW.section_id, NEW.tier_id))
    EXECUTE FUNCTION lower_frontiers_for_freed_seat();

-- Every pool of every event starts at its first seat.
INSERT INTO pick_frontiers (event_id, pool, sort_key)
    SELECT i.event_id, p.pool, min(i.sort_key)
    FROM inventory i CROSS JOIN LATERAL (VALUES (i.section_id), (i.tier_id)) AS p (pool)
    GROUP BY i.event_id, p.pool;

-- Moves up the frontiers of the events named by the seat-change journal's
-- rows after p_after, each to its pool's first free or held seat; returns
-- how many moved and the last journal row read. One statement, one
-- snapshot: a frontier lowered since that snapshot has a new generation,
-- and its move is skipped until the next call. Journal rows committed out
-- of id order may be passed over: their event's frontiers then move at its
-- next change (a pick walks a little further meanwhile, and finds the
-- same seats). Planned once per connection: bounded on both sides, the
-- journal's rows are read by its primary key in the generic plan too. It
-- gives up after p_lock_wait_ms waiting for a frontier another
-- transaction holds (a refund, another origin's advancer): that one may
-- be waiting for a frontier this one holds, and a refund must not be the
-- one to fail.
CREATE FUNCTION advance_pick_frontiers(p_after bigint, p_lock_wait_ms int, OUT moved bigint, OUT last_read bigint)
    LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_wait_ms::text, true);
    last_read := coalesce((SELECT max(id) FROM seat_changes), 0);
    WITH changed AS (
        SELECT DISTINCT event_id FROM seat_changes WHERE id > p_after AND id <= last_read
    ),
    seen AS (
        SELECT f.event_id, f.pool, f.generation,
               coalesce(least(
                   (SELECT i.sort_key FROM inventory i
                    WHERE i.event_id = f.event_id AND i.section_id = f.pool AND i.status IN ('AVAILABLE', 'HELD')
                      AND i.sort_key >= f.sort_key
                    ORDER BY i.sort_key LIMIT 1),
                   (SELECT i.sort_key FROM inventory i
                    WHERE i.event_id = f.event_id AND i.tier_id = f.pool AND i.status IN ('AVAILABLE', 'HELD')
                      AND i.sort_key >= f.sort_key
                    ORDER BY i.sort_key LIMIT 1)),
                   -- Nothing free or held: every seat of the pool is below.
                   2147483647) AS first_takeable
        FROM changed c JOIN pick_frontiers f ON f.event_id = c.event_id
    ),
    advanced AS (
        UPDATE pick_frontiers f SET sort_key = s.first_takeable, generation = f.generation + 1
        FROM seen s
        WHERE f.event_id = s.event_id AND f.pool = s.pool
          AND f.generation = s.generation AND s.first_takeable > f.sort_key
        RETURNING 1
    )
    SELECT count(*) INTO moved FROM advanced;
END
$$;

-- 0007's pick, from the frontier up.
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
                       AND seat_is_free(status, held_until)
                     ORDER BY sort_key LIMIT p_quantity FOR UPDATE SKIP LOCKED);
    ELSIF NOT p_wait THEN
        RETURN ARRAY(SELECT seat_id FROM inventory
                     WHERE event_id = p_event AND tier_id = p_tier AND sort_key >= frontier
                       AND seat_is_free(status, held_until)
                     ORDER BY sort_key LIMIT p_quantity FOR UPDATE SKIP LOCKED);
    ELSIF p_section IS NOT NULL THEN
        RETURN ARRAY(WITH free AS MATERIALIZED (
                         SELECT seat_id, sort_key FROM inventory
                         WHERE event_id = p_event AND section_id = p_section AND sort_key >= frontier
                           AND seat_is_free(status, held_until)
                         ORDER BY seat_id FOR UPDATE)
                     SELECT seat_id FROM free ORDER BY sort_key LIMIT p_quantity);
    ELSE
        RETURN ARRAY(WITH free AS MATERIALIZED (
                         SELECT seat_id, sort_key FROM inventory
                         WHERE event_id = p_event AND tier_id = p_tier AND sort_key >= frontier
                           AND seat_is_free(status, held_until)
                         ORDER BY seat_id FOR UPDATE)
                     SELECT seat_id FROM free ORDER BY sort_key LIMIT p_quantity);
    END IF;
END
$$;

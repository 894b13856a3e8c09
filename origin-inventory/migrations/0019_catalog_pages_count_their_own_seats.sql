-- A catalog page counts the seats of the events it shows, not of every
-- event.
--
-- `catalog_list` filtered, counted and paged `catalog_events`, whose rows
-- carry each event's seat counts: every call counted every seat of every
-- public event (460 ms for 15 events and 757,000 seats on the local
-- stack), whatever the page showed. Each distinct search is a page the
-- edge has not cached, so any visitor could make the origin count all
-- seats as often as they liked. Events are now filtered, counted and
-- paged by their own columns, and only the page's events are described.
CREATE OR REPLACE FUNCTION catalog_list(
    from_time timestamptz, to_time timestamptz, category_is text, city_is text, q text,
    page int, page_size int
) RETURNS json
LANGUAGE sql STABLE AS $$
    WITH matching AS (
        -- The events `catalog_events` shows: public ones.
        SELECT e.id, e.starts_at FROM events e JOIN venues v ON v.id = e.venue_id
        WHERE e.status NOT IN ('draft', 'cancelled')
          AND (from_time IS NULL OR e.starts_at >= from_time)
          AND (to_time IS NULL OR e.starts_at <= to_time)
          AND (category_is IS NULL OR e.category = category_is)
          AND (city_is IS NULL OR lower(v.city) = lower(city_is))
          AND (q IS NULL OR strpos(lower(e.title), lower(q)) > 0 OR strpos(lower(e.description), lower(q)) > 0)
    ),
    shown AS (
        SELECT id, starts_at FROM matching
        ORDER BY starts_at, id LIMIT page_size OFFSET (page - 1) * page_size
    )
    SELECT json_build_object(
        'data', coalesce((SELECT json_agg(c.doc ORDER BY s.starts_at, s.id)
                          FROM shown s JOIN catalog_events c ON c.id = s.id), '[]'::json),
        'meta', json_build_object('total', (SELECT count(*) FROM matching), 'page', page, 'limit', page_size))
$$;

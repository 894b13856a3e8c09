-- The public catalog as JSON, defined once in the database: the origin's
-- catalog API and the edge's direct reads (Cloudflare Workers through
-- Hyperdrive) both call these functions, so they can never disagree.

-- RFC 3339 in UTC, whatever the session's time zone.
CREATE FUNCTION catalog_time(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- One public event (not draft, not cancelled). Availability counts a lapsed
-- hold as free, exactly as the hold logic does.
CREATE VIEW catalog_events AS
SELECT e.id, e.starts_at, e.category, e.title, e.description, v.city,
       json_build_object(
           'id', e.id, 'title', e.title, 'description', e.description, 'category', e.category,
           'starts_at', catalog_time(e.starts_at), 'status', e.status,
           'sale_starts_at', catalog_time(e.sale_starts_at), 'sale_ends_at', catalog_time(e.sale_ends_at),
           'catalog_version', e.catalog_version,
           'venue', json_build_object('id', v.id, 'name', v.name, 'city', v.city, 'timezone', v.timezone),
           'price_range', json_build_object('min_cents', inv.min_cents, 'max_cents', inv.max_cents,
                                            'currency', cur.currency),
           'availability', json_build_object('total_seats', inv.total, 'available_seats', inv.available),
           'queue', json_build_object('enabled', e.queue_enabled, 'paused', e.queue_paused,
                                      'prequeue_starts_at', catalog_time(e.prequeue_starts_at))
       ) AS doc
FROM events e
JOIN venues v ON v.id = e.venue_id
CROSS JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE i.status = 'AVAILABLE' OR (i.status = 'HELD' AND i.held_until < now())) AS available,
           min(i.price_cents) AS min_cents, max(i.price_cents) AS max_cents
    FROM inventory i WHERE i.event_id = e.id) inv
CROSS JOIN LATERAL (SELECT min(t.currency) AS currency FROM price_tiers t WHERE t.venue_id = v.id) cur
WHERE e.status NOT IN ('draft', 'cancelled');

-- `GET /api/v1/events/{id}`: the event, or NULL.
CREATE FUNCTION catalog_event(event_id uuid) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT doc FROM catalog_events WHERE id = event_id
$$;

-- `GET /api/v1/events`: one page of events matching every given filter
-- (NULL = any), by start time; `q` matches title or description literally.
-- Bounds on page and page_size are checked by the callers.
CREATE FUNCTION catalog_list(
    from_time timestamptz, to_time timestamptz, category_is text, city_is text, q text,
    page int, page_size int
) RETURNS json
LANGUAGE sql STABLE AS $$
    WITH matching AS (
        SELECT c.* FROM catalog_events c
        WHERE (from_time IS NULL OR c.starts_at >= from_time)
          AND (to_time IS NULL OR c.starts_at <= to_time)
          AND (category_is IS NULL OR c.category = category_is)
          AND (city_is IS NULL OR lower(c.city) = lower(city_is))
          AND (q IS NULL OR strpos(lower(c.title), lower(q)) > 0 OR strpos(lower(c.description), lower(q)) > 0)
    ),
    shown AS (
        SELECT doc, starts_at, id FROM matching
        ORDER BY starts_at, id LIMIT page_size OFFSET (page - 1) * page_size
    )
    SELECT json_build_object(
        'data', coalesce((SELECT json_agg(doc ORDER BY starts_at, id) FROM shown), '[]'::json),
        'meta', json_build_object('total', (SELECT count(*) FROM matching), 'page', page, 'limit', page_size))
$$;

-- The catalog's availability counts free seats with `seat_is_free` (0007),
-- the one definition the holds, the seat map and the sales figures use,
-- instead of restating it (0004 predates the function). Same columns, so
-- the catalog functions that read the view are untouched.
CREATE OR REPLACE VIEW catalog_events AS
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
           count(*) FILTER (WHERE seat_is_free(i.status, i.held_until)) AS available,
           min(i.price_cents) AS min_cents, max(i.price_cents) AS max_cents
    FROM inventory i WHERE i.event_id = e.id) inv
CROSS JOIN LATERAL (SELECT min(t.currency) AS currency FROM price_tiers t WHERE t.venue_id = v.id) cur
WHERE e.status NOT IN ('draft', 'cancelled');

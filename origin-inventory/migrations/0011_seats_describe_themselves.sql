-- Seats describe themselves.
--
-- A hold and a payment answered with their seats as buyers see them by
-- joining each seat to its section and its tier: three index lookups per
-- seat, twice per order (about 60 of an order's 360 buffer reads). A
-- venue's seats, sections and tiers never change once it is made, so each
-- seat now carries its description and its place in the venue's order,
-- written when the venue is made (`describe_seats`), and every answer that
-- shows seats reads them from there. Triggers describe a venue's seats
-- again should a section, a tier or a seat be changed in the database
-- itself (the API changes none of them).
ALTER TABLE seats ADD COLUMN shown jsonb, ADD COLUMN shown_order int;

-- Describes the seats of one venue (of every venue when NULL): section,
-- row, number, tier and whether it is a standing place, and the order
-- buyers see them in (sections in the venue's order, then row, then number).
CREATE FUNCTION describe_seats(p_venue uuid) RETURNS void LANGUAGE sql AS $$
    UPDATE seats s
    SET shown = jsonb_build_object('section', d.section, 'row', s.row_label, 'number', s.number,
                                   'tier', d.tier, 'general_admission', d.general_admission),
        shown_order = d.place
    FROM (SELECT s.id, sec.name AS section, t.name AS tier, sec.general_admission,
                 row_number() OVER (PARTITION BY s.venue_id ORDER BY sec.position, s.row_label, s.number) AS place
          FROM seats s JOIN sections sec ON sec.id = s.section_id JOIN price_tiers t ON t.id = s.tier_id
          WHERE p_venue IS NULL OR s.venue_id = p_venue) d
    WHERE s.id = d.id
$$;

SELECT describe_seats(NULL);

CREATE FUNCTION describe_seats_of_changed_venues() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM describe_seats(venue_id) FROM (SELECT DISTINCT venue_id FROM changed) v;
    RETURN NULL;
END
$$;
CREATE TRIGGER sections_describe_seats AFTER UPDATE ON sections REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION describe_seats_of_changed_venues();
CREATE TRIGGER price_tiers_describe_seats AFTER UPDATE ON price_tiers REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION describe_seats_of_changed_venues();

-- Seats whose own row, number, section or tier changed (describing them
-- changes none of these, so it does not call itself).
CREATE FUNCTION describe_changed_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM describe_seats(venue_id)
    FROM (SELECT DISTINCT n.venue_id FROM changed n JOIN before_change o ON o.id = n.id
          WHERE (o.section_id, o.tier_id, o.row_label, o.number)
                IS DISTINCT FROM (n.section_id, n.tier_id, n.row_label, n.number)) v;
    RETURN NULL;
END
$$;
CREATE TRIGGER seats_describe_seats AFTER UPDATE ON seats
    REFERENCING OLD TABLE AS before_change NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION describe_changed_seats();

-- 0009's function, reading the seats' own descriptions.
CREATE OR REPLACE FUNCTION reservation_seats_json(p_reservation uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(s.shown || jsonb_build_object('seat_id', rs.seat_id, 'price_cents', rs.price_cents)
                                      ORDER BY s.shown_order), '[]')
            FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
            WHERE rs.reservation_id = p_reservation);
END
$$;

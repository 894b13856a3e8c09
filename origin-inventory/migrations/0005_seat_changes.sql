-- Live seat maps: every change of a seat's status (or of who holds it) is
-- announced on the `seat_changes` channel as "<event> <seat> <STATUS>".
-- NOTIFY is transactional: listeners hear only committed changes, in
-- commit order, and nothing from a rolled-back hold attempt.
CREATE FUNCTION announce_seat_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('seat_changes', NEW.event_id || ' ' || NEW.seat_id || ' ' || NEW.status);
    RETURN NULL;
END
$$;

CREATE TRIGGER inventory_seat_changes
    AFTER UPDATE OF status, hold_id ON inventory
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.hold_id IS DISTINCT FROM NEW.hold_id)
    EXECUTE FUNCTION announce_seat_change();

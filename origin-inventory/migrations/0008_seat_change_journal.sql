-- Live seat maps without NOTIFY on the commit path.
--
-- NOTIFY takes one cluster-wide lock at every commit that notified, so
-- every seat-changing commit of every buyer queued behind every other one.
-- Instead each statement that changes seats appends one row to the
-- `seat_changes` journal (per event: the seats and their new statuses), in
-- its own transaction like any row, and each origin reads the journal a few
-- times a second. A reader takes the rows of transactions that ended since
-- its last read: those whose xid lies below the oldest running xid now and
-- at or above the one at its last read (see `live.rs`).
DROP TRIGGER inventory_seat_changes ON inventory;
DROP FUNCTION announce_seat_change();

CREATE TABLE seat_changes (
    id       bigserial PRIMARY KEY,
    xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id uuid NOT NULL,
    seats    uuid[] NOT NULL,
    statuses text[] NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seat_changes_by_xid ON seat_changes (xid);
CREATE INDEX seat_changes_by_age ON seat_changes (at);

-- A seat changes when its status or its holder does (extending a hold
-- changes neither).
CREATE FUNCTION journal_seat_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO seat_changes (event_id, seats, statuses)
        SELECT n.event_id, array_agg(n.seat_id), array_agg(n.status)
        FROM changed n JOIN before_change o ON o.event_id = n.event_id AND o.seat_id = n.seat_id
        WHERE o.status IS DISTINCT FROM n.status OR o.hold_id IS DISTINCT FROM n.hold_id
        GROUP BY n.event_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER inventory_seat_changes
    AFTER UPDATE ON inventory
    REFERENCING OLD TABLE AS before_change NEW TABLE AS changed
    FOR EACH STATEMENT
    EXECUTE FUNCTION journal_seat_changes();

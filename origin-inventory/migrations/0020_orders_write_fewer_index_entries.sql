-- An order writes fewer index entries.
--
-- The bench counts, from the WAL, what Postgres writes per order: about 45
-- B-tree entries for a one-seat order, each a descent of its index (two or
-- three buffers) and a WAL record. Eight of them can go:
--
-- - `payments_provider_id` is read by no query (a provider's notice names
--   our payment in its metadata); a payment wrote its entry twice, when
--   it began and when it succeeded.
-- - A claim by the outbox moved `next_attempt_at`, a key of `outbox_due`:
--   each of an order's two messages got a new version with new entries in
--   both of the outbox's indexes. A claim now sets `leased_until`, which no
--   index holds, on a page kept half empty for it, so Postgres updates the
--   row in place (HOT). A message is due when `next_attempt_at` has come
--   and no lease runs; a claim skips the leased ones, which are few: the
--   batches other senders have in hand.
-- - `seat_changes_by_age` served only the delete that forgets journal rows
--   older than ten minutes, and each of an order's two journal rows wrote
--   an entry in it. The delete now finds them by the primary key (`live.rs`):
--   rows are numbered as they are written, so the old ones come first.
DROP INDEX payments_provider_id;

ALTER TABLE outbox ADD COLUMN leased_until timestamptz;
-- Only pages written from now on: the rows already there are mostly sent.
ALTER TABLE outbox SET (fillfactor = 50);

-- 0009's record, which also ends the lease: a retry is due when its
-- backoff ends, not when the lease would have.
CREATE OR REPLACE FUNCTION outbox_record_all(p_ids bigint[], p_errors text[], p_retry_after double precision[])
    RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE outbox o
    SET delivered_at = CASE WHEN r.error IS NULL THEN now() END,
        attempts = o.attempts + 1,
        last_error = r.error,
        leased_until = NULL,
        next_attempt_at = CASE WHEN r.error IS NULL THEN o.next_attempt_at
                               ELSE now() + make_interval(secs => r.retry_after) END
    FROM unnest(p_ids, p_errors, p_retry_after) AS r(id, error, retry_after)
    WHERE o.id = r.id;
END
$$;

DROP INDEX seat_changes_by_age;

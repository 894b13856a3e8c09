-- An Idempotency-Key names one payment of one hold, as the request it
-- comes with does (`POST /reservations/{id}/commit`): the same key on
-- another hold is another payment, not a reused key. Two buyers who
-- happened to choose the same key were refused (`idempotency_key_reused`)
-- for a request of someone else's.
--
-- The unique index then begins with the hold's id, which is time-ordered
-- (`src/ids.rs`), so it grows at its right edge: keyed by the client's
-- key alone it took each payment at a random leaf, a whole page in the
-- WAL at the first payment after each checkpoint (on the local stack,
-- after a checkpoint, 1,929 of the 6,533 whole pages 3,916 orders wrote).
CREATE UNIQUE INDEX payments_key_per_hold ON payments (reservation_id, idempotency_key);
ALTER TABLE payments DROP CONSTRAINT payments_idempotency_key_key;

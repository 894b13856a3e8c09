-- A claim reads the batch it takes, however far delivery has fallen behind.
--
-- The outbox worker claimed the first messages by id among the due ones:
-- `outbox_due` gave every due message (by when it is due), each was read
-- from the table and they were sorted to take the first hundred. While
-- orders come in faster than mail goes out, that is the whole backlog at
-- each claim (thousands of rows, four times a second), and each claim
-- grows slower the further behind delivery is. (Postgres's other plan,
-- the primary key walked in order, read every message sent before the
-- first due one: all of them, kept for the record.) Claims now take the
-- messages due first, in the index's own order: a new message is due when
-- it is written, so this is still first come, first sent, and a retry
-- waits its turn behind what fell due before it.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL;

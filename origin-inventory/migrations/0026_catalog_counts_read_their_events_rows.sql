-- Counting an event's seats for the catalog reads that event's rows only.
--
-- `catalog_events` counts each event's seats with `event_id = e.id`, the
-- event known only once the query runs, so Postgres estimates its share of
-- `inventory` as one over the number of events. With few events (a new
-- installation, a small organizer) that share is large and the cheapest
-- plan is a scan of the whole table, run once for each event shown: a
-- catalog page of one 250-seat event among five read 191 buffers instead
-- of 15, and a page of twenty events would read the table twenty times.
-- The primary key's index leads with `event_id`; with sequential scans
-- priced out of these two functions, each count reads the event's own
-- index entries and pages, whatever the statistics say.
ALTER FUNCTION catalog_list(timestamptz, timestamptz, text, text, text, int, int) SET enable_seqscan = off;
ALTER FUNCTION catalog_event(uuid) SET enable_seqscan = off;

-- The hold's statements keep one plan per connection.
--
-- Postgres plans a statement inside a PL/pgSQL function anew on every call
-- while a plan for its actual parameters looks cheaper than the generic
-- one. For the best-available pick (`LIMIT p_quantity`) and the hold's
-- compare-and-swap (`seat_id = ANY (picked)`) it always does: the generic
-- plan guesses ten percent of the rows for the limit and ten elements for
-- the array, so every order paid about a quarter of a millisecond of
-- planning for the same index scans (`EXPLAIN EXECUTE` with each plan
-- cache mode: same plan, same index, for every variant the functions
-- run). The outbox's records are the same case (`unnest` of the arrays).
ALTER FUNCTION pick_best_seats(uuid, uuid, uuid, int, boolean) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION hold_seats(uuid, text, uuid, uuid, double precision, int, text, uuid[], uuid, uuid, int, boolean)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION outbox_record_all(bigint[], text[], double precision[]) SET plan_cache_mode = force_generic_plan;

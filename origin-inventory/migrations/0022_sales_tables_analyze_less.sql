-- Autovacuum analyzes the order path's tables less often, and reads less
-- when it does.
--
-- A table is analyzed each time a tenth of it has changed. In a sale the
-- order path's tables grow by a tenth every few seconds, and each ANALYZE
-- samples up to 30,000 rows and sorts every column's values: jsonb ones
-- with a full comparison of their trees. `perf` of Postgres during a
-- 16-buyer order run on the local stack found `analyze_rel` in 15% of its
-- samples; ANALYZE of outbox, payments, orders and tickets took 1.6–1.9 s
-- of CPU together.
--
-- 1. Columns that no query filters, joins, groups or sorts by (bodies
--    kept to be sent or replayed, secrets compared in the origin, and
--    ticket codes, found through their unique index) get no statistics.
--    The four tables' ANALYZE then takes 0.74–0.76 s.
-- 2. The tables a sale writes and reads only by key are analyzed when half
--    of them has changed instead of a tenth: they are read through unique
--    and partial indexes, on plans that do not turn on their statistics
--    (the hot ones are generic, made once per connection).
--    `inventory` keeps the default: best-available picks seats by its
--    statistics, and an event's creation analyzes it anyway.
ALTER TABLE outbox ALTER COLUMN payload SET STATISTICS 0, ALTER COLUMN last_error SET STATISTICS 0,
    SET (autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE payments ALTER COLUMN response_body SET STATISTICS 0, ALTER COLUMN request_hash SET STATISTICS 0,
    SET (autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE orders ALTER COLUMN secret SET STATISTICS 0, SET (autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE tickets ALTER COLUMN code SET STATISTICS 0, SET (autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE reservations SET (autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE reservation_seats SET (autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE buyer_tickets SET (autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE seat_changes SET (autovacuum_analyze_scale_factor = 0.5);

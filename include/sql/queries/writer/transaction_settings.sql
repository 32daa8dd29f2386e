-- Every write transaction of the writer. JIT compiles one expression set per partition of the
-- target (~500 functions, ~1 s for a 61-partition table) as soon as the estimated cost of a
-- statement passes jit_above_cost, which a staged UPDATE against a grown table does; a writer
-- statement never runs long enough to win that back (measured: 1.28 s with, 15 ms without).
-- SET LOCAL: for the current transaction only.
SET LOCAL jit = off

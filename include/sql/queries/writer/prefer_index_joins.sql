-- Few staged rows against a large (partitioned) target: join by probing the target's key index
-- instead of hashing the whole target. A hash join reads every partition, so its cost grows with
-- the table rather than with the write (per-ticker history loads: 0.07 s -> 0.4 s per call at
-- 400k rows and rising). SET LOCAL: for the current transaction only.
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off

-- The rows of one relation, to verify an archive against before the relation is dropped.
SELECT count(*) FROM {relation}

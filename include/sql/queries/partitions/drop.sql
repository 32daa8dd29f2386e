-- {partition}: identifier. Dropping a whole partition frees its space at once (no VACUUM debt).
DROP TABLE IF EXISTS {partition}

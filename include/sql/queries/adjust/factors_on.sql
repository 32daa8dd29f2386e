-- The factors whose ex-date is session %(day)s.
SELECT ticker, ex_date, factor, kind, flagged, note
FROM adjustment_factors
WHERE ex_date = %(day)s
ORDER BY ticker

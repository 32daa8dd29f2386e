-- The adjustment factors of one ticker, oldest ex-date first: why its adjusted chart differs from the raw one.
SELECT ex_date, previous_date, previous_close, base_price, factor::float8 AS factor, shares_before, shares_after,
       kind, flagged, note
FROM adjustment_factors
WHERE ticker = %(ticker)s
ORDER BY ex_date

-- The stored adjustment factors of some tickers (all of them when %(tickers)s is NULL).
SELECT ticker, ex_date, previous_date, previous_close, base_price, factor, shares_before, shares_after,
       kind, flagged, note
FROM adjustment_factors
WHERE %(tickers)s::text[] IS NULL OR ticker = ANY(%(tickers)s::text[])
ORDER BY ticker, ex_date

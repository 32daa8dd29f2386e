-- One page of the ticker master for GET /krx/stocks, in ticker order.
-- %(market)s / %(search)s may be NULL (no filter); %(search)s matches the name or the code. It
-- arrives LIKE-escaped (a backslash before each wildcard and backslash), so user text matches literally.
SELECT ticker, name, market, isin, sector, listed_shares, market_cap, first_seen, last_seen, delisted,
       delisted_on, count(*) OVER () AS total
FROM stocks
WHERE (%(market)s::text IS NULL OR market = %(market)s)
  AND (%(include_delisted)s OR NOT delisted)
  AND (%(search)s::text IS NULL OR ticker LIKE %(search)s || '%%' ESCAPE '\'
                                  OR name ILIKE '%%' || %(search)s || '%%' ESCAPE '\')
ORDER BY ticker
LIMIT %(limit)s OFFSET %(offset)s

-- The default KIS watchlist: the %(limit)s largest listed (not delisted) stocks by market cap.
SELECT ticker
FROM stocks
WHERE NOT delisted AND market_cap IS NOT NULL
ORDER BY market_cap DESC, ticker
LIMIT %(limit)s

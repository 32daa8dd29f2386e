-- The KIS watchlist "all": every listed (not delisted) stock.
SELECT ticker
FROM stocks
WHERE NOT delisted
ORDER BY ticker

-- Tickers of the ticker master for the history backfill, with their ISIN (KRX's raw series needs it).
SELECT ticker, isin, delisted
FROM stocks
WHERE market IN ('KOSPI', 'KOSDAQ')
ORDER BY ticker

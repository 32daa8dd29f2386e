-- KRX's delisting date of each ticker delisted up to a session (the latest, for a reused code):
-- a period that ends with a delisting ends on KRX's date, not on the day krxflow noticed.
SELECT ticker, max(delisted_on) AS delisted_on FROM krx_delistings
WHERE delisted_on <= %(day)s AND market IN ('KOSPI', 'KOSDAQ') GROUP BY ticker

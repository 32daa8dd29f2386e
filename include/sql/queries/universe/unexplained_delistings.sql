-- Tickers the master saw delisted in the window that KRX's delisted-issues report has not explained yet.
SELECT count(*) AS missing FROM stocks s
WHERE s.delisted AND s.delisted_on > %(since)s AND s.delisted_on <= %(day)s
  -- a row KRX's report itself added (never seen trading: no last_seen) is explained by that report
  AND NOT EXISTS (SELECT 1 FROM krx_delistings d
                  WHERE d.ticker = s.ticker AND (s.last_seen IS NULL OR d.delisted_on >= s.last_seen))

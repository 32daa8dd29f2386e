-- Every ticker with a row on session %(day)s: that row, the ticker's previous row and its next row
-- (any distance back or ahead: halts), for finding ex-dates on the day and on the next row.
SELECT p.ticker,
       p.trade_date, p.close, p.base_price, p.listed_shares,
       prev.trade_date AS prev_date, prev.close AS prev_close, prev.base_price AS prev_base,
       prev.listed_shares AS prev_shares,
       nxt.trade_date AS next_date, nxt.close AS next_close, nxt.base_price AS next_base,
       nxt.listed_shares AS next_shares
FROM daily_prices p
LEFT JOIN LATERAL (
    SELECT q.trade_date, q.close, q.base_price, q.listed_shares
    FROM daily_prices q
    WHERE q.ticker = p.ticker AND q.trade_date < p.trade_date
    ORDER BY q.trade_date DESC
    LIMIT 1
) prev ON true
LEFT JOIN LATERAL (
    SELECT q.trade_date, q.close, q.base_price, q.listed_shares
    FROM daily_prices q
    WHERE q.ticker = p.ticker AND q.trade_date > p.trade_date
    ORDER BY q.trade_date
    LIMIT 1
) nxt ON true
WHERE p.trade_date = %(day)s

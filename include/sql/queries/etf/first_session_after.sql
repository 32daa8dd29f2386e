-- For each date of %(afters)s, the first session after it that krx_etp_prices holds (NULL if none):
-- for a product last seen on that date, the first loaded session without it (its delisting).
SELECT a.after, (SELECT min(p.trade_date) FROM krx_etp_prices p WHERE p.trade_date > a.after) AS day
FROM unnest(%(afters)s::date[]) AS a(after)

-- What the daily_indicators task must (re)compute for one price table ({source}: daily_prices or
-- daily_prices_adjusted; %(adjusted)s says which). One row per ticker of the source:
--   computed_through  the newest trade_date already in daily_indicators (NULL: never computed)
--   up_to_date        the indicator rows mirror the source rows exactly (same count, closes, last day)
--   history_unchanged the source rows up to computed_through are those the indicators were computed
--                     from (same count and sum of closes), so only newer days need writing;
--                     otherwise (a split rewrote the adjusted series, a correction) the ticker's whole
--                     history is rewritten.
WITH src AS (
    SELECT ticker, count(*) AS n, max(trade_date) AS last_date, sum(close) AS total
    FROM {source}
    GROUP BY ticker
), done AS (
    SELECT ticker, count(*) AS n, max(trade_date) AS last_date, sum(close) AS total
    FROM daily_indicators
    WHERE adjusted = %(adjusted)s
    GROUP BY ticker
), src_upto AS (
    SELECT p.ticker, count(*) AS n, sum(p.close) AS total
    FROM {source} p
    JOIN done d ON d.ticker = p.ticker AND p.trade_date <= d.last_date
    GROUP BY p.ticker
)
SELECT src.ticker,
       done.last_date AS computed_through,
       coalesce(src.n = done.n AND src.total = done.total AND src.last_date = done.last_date, false)
           AS up_to_date,
       coalesce(src_upto.n = done.n AND src_upto.total = done.total, false) AS history_unchanged
FROM src
LEFT JOIN done ON done.ticker = src.ticker
LEFT JOIN src_upto ON src_upto.ticker = src.ticker
ORDER BY src.ticker

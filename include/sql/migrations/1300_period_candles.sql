-- One candle view for every period.
--
-- weekly_candles and monthly_candles (0200) were the same query twice, differing only in
-- date_trunc's unit. period_candles computes both, with the period ('week' | 'month') as a
-- column and in the key; the materialized view is refreshed once instead of twice.
-- weekly_candles and monthly_candles stay, as plain views over it with their old columns, so SQL
-- written against them (users' own Grafana panels, notebooks) reads the same rows.
--
-- Semantics are 0200's: open = first non-NULL open of the period, close = last close, high/low
-- over the days that traded (halted days carry NULL), volume/trading_value summed, trading_value
-- NULL for adjusted rows. Weeks are ISO weeks (Monday) and months calendar months of the KST
-- trade_date; the cast to timestamp (without time zone) keeps the result independent of the
-- session's TimeZone.

DROP MATERIALIZED VIEW IF EXISTS weekly_candles;
DROP MATERIALIZED VIEW IF EXISTS monthly_candles;

CREATE MATERIALIZED VIEW IF NOT EXISTS period_candles AS
WITH bars AS (
    SELECT ticker, false AS adjusted, trade_date,
           open::numeric AS open, high::numeric AS high, low::numeric AS low, close::numeric AS close,
           volume, trading_value::numeric AS trading_value
    FROM daily_prices
    UNION ALL
    SELECT ticker, true, trade_date, open, high, low, close, volume, NULL::numeric
    FROM daily_prices_adjusted
),
periods (period) AS (VALUES ('week'), ('month'))
SELECT p.period,
       b.ticker,
       b.adjusted,
       date_trunc(p.period, b.trade_date::timestamp)::date                                 AS period_start,
       (array_agg(b.open ORDER BY b.trade_date) FILTER (WHERE b.open IS NOT NULL))[1]      AS open,
       max(b.high)                                                                         AS high,
       min(b.low)                                                                          AS low,
       (array_agg(b.close ORDER BY b.trade_date DESC))[1]                                  AS close,
       sum(b.volume)::bigint                                                               AS volume,
       CASE WHEN b.adjusted THEN NULL ELSE sum(b.trading_value) END                        AS trading_value,
       count(*)::int                                                                       AS trading_days,
       min(b.trade_date)                                                                   AS first_date,
       max(b.trade_date)                                                                   AS last_date
FROM bars b
CROSS JOIN periods p
GROUP BY p.period, b.ticker, b.adjusted, date_trunc(p.period, b.trade_date::timestamp)
WITH DATA;

CREATE UNIQUE INDEX IF NOT EXISTS period_candles_key ON period_candles (period, ticker, adjusted, period_start);
CREATE INDEX IF NOT EXISTS period_candles_period_idx ON period_candles (period, period_start);

CREATE OR REPLACE VIEW weekly_candles AS
SELECT ticker, adjusted, period_start, open, high, low, close, volume, trading_value, trading_days,
       first_date, last_date
FROM period_candles
WHERE period = 'week';

CREATE OR REPLACE VIEW monthly_candles AS
SELECT ticker, adjusted, period_start, open, high, low, close, volume, trading_value, trading_days,
       first_date, last_date
FROM period_candles
WHERE period = 'month';

COMMENT ON MATERIALIZED VIEW period_candles IS
    'Weekly and monthly OHLCV candles (period week|month), raw and split-adjusted; refreshed by db_matviews.';

-- The read-only role's default privileges cover new relations of the migrating role; say it
-- explicitly in case another role runs this migration.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'krxflow_readonly') THEN
        GRANT SELECT ON period_candles, weekly_candles, monthly_candles TO krxflow_readonly;
    END IF;
END
$$;

-- Upkeep read models (issue 5): the nightly materialized views and the technical-indicator table.
--
-- Contract shared with the Grafana dashboards and the read API (names and columns are fixed;
-- extra columns may be added by later migrations):
--   daily_market_summary  (trade_date, market)              one row per KST trading day and market
--   weekly_candles        (ticker, adjusted, period_start)  KST weeks starting Monday
--   monthly_candles       (ticker, adjusted, period_start)  calendar months
--   daily_indicators      (ticker, adjusted, trade_date)    MA, Bollinger, RSI, MACD, Stochastic
--
-- The views are created WITH DATA so they are queryable at once (empty on a fresh database);
-- the db_matviews DAG refreshes them CONCURRENTLY, which the unique indexes below allow.

-- ---------------------------------------------------------------------------------------------
-- Market breadth per day and market.
--   * "traded" = volume > 0: halted days (open/high/low NULL, volume 0) are counted in `halted`
--     and left out of every other figure.
--   * The day's return is KRX's own change_rate (percent, against the base price, so the day after
--     a split is not a -80 % crash); when a loader left it NULL, the close-to-close change.
--   * market is the ticker's current market in `stocks` ('UNKNOWN' for tickers not in it).
CREATE MATERIALIZED VIEW IF NOT EXISTS daily_market_summary AS
WITH priced AS (
    SELECT p.trade_date,
           coalesce(s.market, 'UNKNOWN') AS market,
           p.volume,
           p.trading_value,
           coalesce(p.change_rate::numeric,
                    round(100.0 * (p.close - lag(p.close) OVER w) / nullif(lag(p.close) OVER w, 0), 2))
               AS return_pct
    FROM daily_prices p
    LEFT JOIN stocks s ON s.ticker = p.ticker
    WINDOW w AS (PARTITION BY p.ticker ORDER BY p.trade_date)
)
SELECT trade_date,
       market,
       (count(*) FILTER (WHERE volume > 0))::int                         AS tickers_traded,
       coalesce(sum(trading_value) FILTER (WHERE volume > 0), 0)::numeric AS trading_value,
       round(avg(return_pct) FILTER (WHERE volume > 0), 4)                AS mean_return,
       (count(*) FILTER (WHERE volume > 0 AND return_pct > 0))::int       AS advancers,
       (count(*) FILTER (WHERE volume > 0 AND return_pct < 0))::int       AS decliners,
       (count(*) FILTER (WHERE volume > 0 AND return_pct = 0))::int       AS unchanged,
       (count(*) FILTER (WHERE volume = 0))::int                          AS halted,
       sum(volume)::bigint                                                AS volume
FROM priced
GROUP BY trade_date, market
WITH DATA;

CREATE UNIQUE INDEX IF NOT EXISTS daily_market_summary_key ON daily_market_summary (trade_date, market);

-- ---------------------------------------------------------------------------------------------
-- Weekly and monthly candles, raw (daily_prices) and split-adjusted (daily_prices_adjusted).
--   open  = first non-NULL open of the period, close = last close,
--   high/low = max/min over the days that traded (halted days carry NULL and are ignored),
--   volume/trading_value summed; trading_value is NULL for adjusted rows (no such source column).
-- Weeks are ISO weeks (Monday) and months calendar months of the KST trade_date; the cast to
-- timestamp (without time zone) keeps the result independent of the session's TimeZone.
CREATE MATERIALIZED VIEW IF NOT EXISTS weekly_candles AS
WITH bars AS (
    SELECT ticker, false AS adjusted, trade_date,
           open::numeric AS open, high::numeric AS high, low::numeric AS low, close::numeric AS close,
           volume, trading_value::numeric AS trading_value
    FROM daily_prices
    UNION ALL
    SELECT ticker, true, trade_date, open, high, low, close, volume, NULL::numeric
    FROM daily_prices_adjusted
)
SELECT ticker,
       adjusted,
       date_trunc('week', trade_date::timestamp)::date                               AS period_start,
       (array_agg(open ORDER BY trade_date) FILTER (WHERE open IS NOT NULL))[1]      AS open,
       max(high)                                                                     AS high,
       min(low)                                                                      AS low,
       (array_agg(close ORDER BY trade_date DESC))[1]                                AS close,
       sum(volume)::bigint                                                           AS volume,
       CASE WHEN adjusted THEN NULL ELSE sum(trading_value) END                      AS trading_value,
       count(*)::int                                                                 AS trading_days,
       min(trade_date)                                                               AS first_date,
       max(trade_date)                                                               AS last_date
FROM bars
GROUP BY ticker, adjusted, date_trunc('week', trade_date::timestamp)
WITH DATA;

CREATE UNIQUE INDEX IF NOT EXISTS weekly_candles_key ON weekly_candles (ticker, adjusted, period_start);
CREATE INDEX IF NOT EXISTS weekly_candles_period_idx ON weekly_candles (period_start);

CREATE MATERIALIZED VIEW IF NOT EXISTS monthly_candles AS
WITH bars AS (
    SELECT ticker, false AS adjusted, trade_date,
           open::numeric AS open, high::numeric AS high, low::numeric AS low, close::numeric AS close,
           volume, trading_value::numeric AS trading_value
    FROM daily_prices
    UNION ALL
    SELECT ticker, true, trade_date, open, high, low, close, volume, NULL::numeric
    FROM daily_prices_adjusted
)
SELECT ticker,
       adjusted,
       date_trunc('month', trade_date::timestamp)::date                              AS period_start,
       (array_agg(open ORDER BY trade_date) FILTER (WHERE open IS NOT NULL))[1]      AS open,
       max(high)                                                                     AS high,
       min(low)                                                                      AS low,
       (array_agg(close ORDER BY trade_date DESC))[1]                                AS close,
       sum(volume)::bigint                                                           AS volume,
       CASE WHEN adjusted THEN NULL ELSE sum(trading_value) END                      AS trading_value,
       count(*)::int                                                                 AS trading_days,
       min(trade_date)                                                               AS first_date,
       max(trade_date)                                                               AS last_date
FROM bars
GROUP BY ticker, adjusted, date_trunc('month', trade_date::timestamp)
WITH DATA;

CREATE UNIQUE INDEX IF NOT EXISTS monthly_candles_key ON monthly_candles (ticker, adjusted, period_start);
CREATE INDEX IF NOT EXISTS monthly_candles_period_idx ON monthly_candles (period_start);

-- ---------------------------------------------------------------------------------------------
-- Technical indicators per ticker and trading day, over each ticker's FULL history (raw and
-- adjusted series). A table, not a materialized view: EMA, Wilder's RSI and the MACD signal are
-- recursive (each value depends on the previous one), which SQL can only express with a slow
-- recursive CTE; and a nightly CONCURRENTLY refresh would recompute and diff ~7M rows where the
-- krxflow.upkeep.indicators task writes only what changed (through BatchedPostgresHook).
-- Definitions (see krxflow.upkeep.indicators): simple MAs of close; Bollinger(20, 2) with the
-- population standard deviation; RSI(14) Wilder (seeded with the simple mean of the first 14
-- changes); MACD(12, 26, 9) EMAs seeded with the first value; slow Stochastic(14, 3, 3) over each
-- day's range widened to include its close (a halted day, high/low NULL, counts as its close).
-- A value is NULL until the ticker has enough history for it.
CREATE TABLE IF NOT EXISTS daily_indicators (
    ticker          text NOT NULL,
    adjusted        boolean NOT NULL,
    trade_date      date NOT NULL,
    close           numeric(18, 4) NOT NULL,
    ma5             double precision,
    ma20            double precision,
    ma60            double precision,
    ma120           double precision,
    ma200           double precision,
    bb_middle       double precision,
    bb_upper        double precision,
    bb_lower        double precision,
    rsi14           double precision CHECK (rsi14 BETWEEN 0 AND 100),
    macd            double precision,
    macd_signal     double precision,
    macd_hist       double precision,
    stoch_k         double precision CHECK (stoch_k BETWEEN 0 AND 100),
    stoch_d         double precision CHECK (stoch_d BETWEEN 0 AND 100),
    PRIMARY KEY (ticker, adjusted, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS daily_indicators_trade_date_idx ON daily_indicators (trade_date);

INSERT INTO krxflow_partitioning (parent_table, key_column, granularity, premake, retention_days) VALUES
    ('daily_indicators', 'trade_date', 'month', 3, NULL)
ON CONFLICT (parent_table) DO NOTHING;

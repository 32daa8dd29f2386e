-- KIS realtime: every trade pushed over the WebSocket (H0STCNT0 / H0UNCNT0), and 1-minute bars.
--
-- trades: one row per trade. KIS sends no trade id; the key (ticker, ts, cum_volume) tells apart
-- the many trades of one second (every trade increases the day's cumulative volume) and makes a
-- record delivered twice (a drain rerun, a Redis rewrite) one row. ts is the exchange time (KST
-- date + HHMMSS from the message); received_at is when the collector read it (µs), for lag.
-- Daily partitions, kept 30 days like order_books (the retention DAG reads krxflow_partitioning).
CREATE TABLE IF NOT EXISTS trades (
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    ts              timestamptz NOT NULL,
    cum_volume      bigint NOT NULL CHECK (cum_volume >= 0),
    price           bigint NOT NULL CHECK (price >= 0),
    change          bigint,
    change_rate     numeric(10, 2),
    volume          bigint NOT NULL CHECK (volume >= 0),
    cum_value       bigint CHECK (cum_value >= 0),
    side            text CHECK (side IN ('buy', 'sell')),
    open            bigint CHECK (open >= 0),
    high            bigint CHECK (high >= 0),
    low             bigint CHECK (low >= 0),
    ask_price_1     bigint CHECK (ask_price_1 >= 0),
    bid_price_1     bigint CHECK (bid_price_1 >= 0),
    ask_qty_1       bigint CHECK (ask_qty_1 >= 0),
    bid_qty_1       bigint CHECK (bid_qty_1 >= 0),
    strength        numeric(12, 2),
    halted          boolean NOT NULL DEFAULT false,
    hour_code       text,
    received_at     timestamptz NOT NULL,
    PRIMARY KEY (ticker, ts, cum_volume)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS trades_ts_idx ON trades (ts);
COMMENT ON TABLE trades IS
    'Every trade KIS pushed over the realtime WebSocket (H0STCNT0, or H0UNCNT0 for KRX+NXT); '
    'key (ticker, ts, cum_volume) keeps several trades of one second apart.';

-- minute_bars: 1-minute OHLCV from KIS REST (inquire-time-itemchartprice for today,
-- inquire-time-dailychartprice for past days). minute = the bar's start (KST), value = traded KRW
-- in that minute (difference of KIS's cumulative acml_tr_pbmn; NULL when not derivable).
CREATE TABLE IF NOT EXISTS minute_bars (
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    minute          timestamptz NOT NULL,
    open            bigint NOT NULL CHECK (open >= 0),
    high            bigint NOT NULL CHECK (high >= 0),
    low             bigint NOT NULL CHECK (low >= 0),
    close           bigint NOT NULL CHECK (close >= 0),
    volume          bigint NOT NULL CHECK (volume >= 0),
    value           bigint CHECK (value >= 0),
    PRIMARY KEY (ticker, minute)
) PARTITION BY RANGE (minute);
CREATE INDEX IF NOT EXISTS minute_bars_minute_idx ON minute_bars (minute);

INSERT INTO krxflow_partitioning (parent_table, key_column, granularity, premake, retention_days) VALUES
    ('trades',      'ts',     'day',   7, 30),
    ('minute_bars', 'minute', 'month', 2, 400)
ON CONFLICT (parent_table) DO NOTHING;

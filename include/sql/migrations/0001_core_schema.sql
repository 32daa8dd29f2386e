-- krxflow core schema: ticker master, daily prices (raw and adjusted), intraday ticks and
-- order books, raw payloads, and the write log every load appends to.
--
-- Conventions
--   * Prices are exact: integer won (bigint) for KRX/KIS prices, numeric for derived values.
--   * Time-series tables are range-partitioned; their granularity, key and retention live in
--     krxflow_partitioning so that the hook and the upkeep DAGs share one source of truth.
--   * Partition bounds are KST (Asia/Seoul) calendar days and months.
--   * There are no DEFAULT partitions on purpose: a row for a missing period must fail loudly,
--     and the writer creates the partitions it needs before it writes.

CREATE TABLE IF NOT EXISTS krxflow_partitioning (
    parent_table    text PRIMARY KEY,
    key_column      text NOT NULL,
    granularity     text NOT NULL CHECK (granularity IN ('day', 'month')),
    premake         integer NOT NULL DEFAULT 3 CHECK (premake >= 0),
    retention_days  integer CHECK (retention_days IS NULL OR retention_days > 0),
    earliest        date NOT NULL DEFAULT date '2015-01-01'
);
COMMENT ON TABLE krxflow_partitioning IS
    'How each partitioned table is split: key column, day or month periods (KST), how many periods '
    'to create ahead, and how long rows are kept (NULL = forever).';

-- ---------------------------------------------------------------------------------------------
-- Ticker master
CREATE TABLE IF NOT EXISTS stocks (
    ticker          text PRIMARY KEY CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    name            text NOT NULL,
    market          text NOT NULL CHECK (market IN ('KOSPI', 'KOSDAQ', 'KONEX')),
    isin            text CHECK (isin IS NULL OR isin ~ '^KR[0-9A-Z]{10}$'),
    sector          text,
    listed_shares   bigint CHECK (listed_shares >= 0),
    market_cap      bigint CHECK (market_cap >= 0),
    first_seen      date,
    last_seen       date,
    delisted        boolean NOT NULL DEFAULT false,
    delisted_on     date,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS stocks_market_idx ON stocks (market) WHERE NOT delisted;
CREATE INDEX IF NOT EXISTS stocks_market_cap_idx ON stocks (market_cap DESC NULLS LAST) WHERE NOT delisted;

CREATE OR REPLACE VIEW kospi_stocks AS SELECT * FROM stocks WHERE market = 'KOSPI';
CREATE OR REPLACE VIEW kosdaq_stocks AS SELECT * FROM stocks WHERE market = 'KOSDAQ';

-- ---------------------------------------------------------------------------------------------
-- Daily prices as KRX publishes them (unadjusted). Halted days: open/high/low NULL, close carried,
-- volume 0 (KRX sends "0" for the missing prices; the sources normalise that to NULL).
CREATE TABLE IF NOT EXISTS daily_prices (
    ticker          text NOT NULL,
    trade_date      date NOT NULL,
    open            bigint CHECK (open >= 0),
    high            bigint CHECK (high >= 0),
    low             bigint CHECK (low >= 0),
    close           bigint NOT NULL CHECK (close >= 0),
    volume          bigint NOT NULL CHECK (volume >= 0),
    trading_value   bigint CHECK (trading_value >= 0),
    change_rate     numeric(10, 2),
    market_cap      bigint CHECK (market_cap >= 0),
    listed_shares   bigint CHECK (listed_shares >= 0),
    PRIMARY KEY (ticker, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS daily_prices_trade_date_idx ON daily_prices (trade_date);

-- The split-adjusted series lives in its own table rather than in extra columns: it comes from
-- another source (Naver through pykrx) on another schedule, is rewritten wholesale after each
-- corporate action, and does not cover delisted tickers. Separate tables let each loader own
-- its rows without overwriting the other's columns or leaving half-filled rows.
CREATE TABLE IF NOT EXISTS daily_prices_adjusted (
    ticker          text NOT NULL,
    trade_date      date NOT NULL,
    open            numeric(18, 4) CHECK (open >= 0),
    high            numeric(18, 4) CHECK (high >= 0),
    low             numeric(18, 4) CHECK (low >= 0),
    close           numeric(18, 4) NOT NULL CHECK (close >= 0),
    volume          bigint NOT NULL CHECK (volume >= 0),
    change_rate     numeric(10, 2),
    PRIMARY KEY (ticker, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS daily_prices_adjusted_trade_date_idx ON daily_prices_adjusted (trade_date);

-- ---------------------------------------------------------------------------------------------
-- Intraday snapshots from the KIS REST API.
CREATE TABLE IF NOT EXISTS intraday_quotes (
    ticker          text NOT NULL,
    ts              timestamptz NOT NULL,
    price           bigint NOT NULL CHECK (price >= 0),
    change          bigint,
    change_rate     numeric(10, 2),
    cum_volume      bigint CHECK (cum_volume >= 0),
    cum_value       bigint CHECK (cum_value >= 0),
    open            bigint CHECK (open >= 0),
    high            bigint CHECK (high >= 0),
    low             bigint CHECK (low >= 0),
    halted          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (ticker, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS intraday_quotes_ts_idx ON intraday_quotes (ts);

CREATE TABLE IF NOT EXISTS order_books (
    ticker          text NOT NULL,
    ts              timestamptz NOT NULL,
    ask_price_1 bigint, ask_price_2 bigint, ask_price_3 bigint, ask_price_4 bigint, ask_price_5 bigint,
    ask_price_6 bigint, ask_price_7 bigint, ask_price_8 bigint, ask_price_9 bigint, ask_price_10 bigint,
    bid_price_1 bigint, bid_price_2 bigint, bid_price_3 bigint, bid_price_4 bigint, bid_price_5 bigint,
    bid_price_6 bigint, bid_price_7 bigint, bid_price_8 bigint, bid_price_9 bigint, bid_price_10 bigint,
    ask_qty_1 bigint, ask_qty_2 bigint, ask_qty_3 bigint, ask_qty_4 bigint, ask_qty_5 bigint,
    ask_qty_6 bigint, ask_qty_7 bigint, ask_qty_8 bigint, ask_qty_9 bigint, ask_qty_10 bigint,
    bid_qty_1 bigint, bid_qty_2 bigint, bid_qty_3 bigint, bid_qty_4 bigint, bid_qty_5 bigint,
    bid_qty_6 bigint, bid_qty_7 bigint, bid_qty_8 bigint, bid_qty_9 bigint, bid_qty_10 bigint,
    total_ask_qty   bigint CHECK (total_ask_qty >= 0),
    total_bid_qty   bigint CHECK (total_bid_qty >= 0),
    PRIMARY KEY (ticker, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS order_books_ts_idx ON order_books (ts);

-- Raw payloads (KIS answers, KRX replies worth keeping) for audit and reprocessing.
CREATE TABLE IF NOT EXISTS market_data (
    source          text NOT NULL,
    key             text NOT NULL,
    ts              timestamptz NOT NULL,
    payload         jsonb NOT NULL,
    PRIMARY KEY (source, key, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS market_data_ts_idx ON market_data (ts);

INSERT INTO krxflow_partitioning (parent_table, key_column, granularity, premake, retention_days) VALUES
    ('daily_prices',          'trade_date', 'month', 3, NULL),
    ('daily_prices_adjusted', 'trade_date', 'month', 3, NULL),
    ('intraday_quotes',       'ts',         'month', 3, 365),
    ('order_books',           'ts',         'day',   7, 30),
    ('market_data',           'ts',         'month', 3, 90)
ON CONFLICT (parent_table) DO NOTHING;

-- ---------------------------------------------------------------------------------------------
-- One row per write through BatchedPostgresHook (and per quality check / polling window).
CREATE TABLE IF NOT EXISTS load_stats (
    id              bigserial PRIMARY KEY,
    dag_id          text,
    run_id          text,
    task_id         text,
    map_index       integer,
    table_name      text NOT NULL,
    operation       text NOT NULL,
    rows_in         bigint NOT NULL DEFAULT 0,
    inserted        bigint NOT NULL DEFAULT 0,
    updated         bigint NOT NULL DEFAULT 0,
    unchanged       bigint NOT NULL DEFAULT 0,
    duplicates      bigint NOT NULL DEFAULT 0,
    rejected        bigint NOT NULL DEFAULT 0,
    rows_written    bigint GENERATED ALWAYS AS (inserted + updated) STORED,
    seconds         double precision NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed', 'warning')),
    error           text,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    finished_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS load_stats_finished_at_idx ON load_stats (finished_at);
CREATE INDEX IF NOT EXISTS load_stats_dag_idx ON load_stats (dag_id, finished_at DESC);

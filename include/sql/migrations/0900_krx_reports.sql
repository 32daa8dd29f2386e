-- The rest of what KRX publishes each day (issue 17): indices, investor trading, fundamentals,
-- short selling, short balances and foreign ownership. Each is an all-tickers-one-day report
-- (a few requests a day, see the README); each has its own table, written only through
-- BatchedPostgresHook, monthly-partitioned by trade date (KST) like daily_prices.
--
-- Exact numbers: counts and won amounts are bigint, KRX's 2-decimal figures (index levels,
-- ratios, rates) numeric. KRX's "-" is NULL (a loss maker has no PER; pykrx would say 0).

-- ---------------------------------------------------------------------------------------------
-- Index master: finder_equidx (code = full_code || short_code, as pykrx's index tickers: 1001).
CREATE TABLE IF NOT EXISTS krx_indices (
    index_code      text PRIMARY KEY CHECK (index_code ~ '^[0-9]{4}$'),
    name            text NOT NULL,
    index_group     text NOT NULL CHECK (index_group IN ('KRX', 'KOSPI', 'KOSDAQ')),
    first_seen      date,
    last_seen       date
);
COMMENT ON TABLE krx_indices IS
    'KRX index master (finder_equidx): code, name, group (KRX/KOSPI/KOSDAQ); first/last session with prices.';

-- Index OHLCV, all indices of the KRX, KOSPI and KOSDAQ groups (MDCSTAT00101, one request a group).
CREATE TABLE IF NOT EXISTS krx_index_prices (
    index_code      text NOT NULL CHECK (index_code ~ '^[0-9]{4}$'),
    trade_date      date NOT NULL,
    open            numeric(12, 2) CHECK (open >= 0),
    high            numeric(12, 2) CHECK (high >= 0),
    low             numeric(12, 2) CHECK (low >= 0),
    close           numeric(12, 2) CHECK (close >= 0),
    change          numeric(12, 2),
    change_rate     numeric(10, 2),
    volume          bigint CHECK (volume >= 0),
    trading_value   bigint CHECK (trading_value >= 0),
    market_cap      bigint CHECK (market_cap >= 0),
    PRIMARY KEY (index_code, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS krx_index_prices_trade_date_idx ON krx_index_prices (trade_date);

-- ---------------------------------------------------------------------------------------------
-- Trading by investor type per ticker (MDCSTAT02401 once per investor type, all tickers).
-- The eleven types partition every trade: per ticker and day, net buys sum to zero across them.
-- Institutions (KRX's 7050) = the first seven types.
CREATE TABLE IF NOT EXISTS krx_investor_trading (
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    trade_date      date NOT NULL,
    investor        text NOT NULL CHECK (investor IN (
                        'financial_investment', 'insurance', 'investment_trust', 'private_equity', 'bank',
                        'other_financial', 'pension_fund', 'other_corporation', 'individual', 'foreign',
                        'other_foreign')),
    sell_volume     bigint NOT NULL CHECK (sell_volume >= 0),
    buy_volume      bigint NOT NULL CHECK (buy_volume >= 0),
    net_volume      bigint NOT NULL,
    sell_value      bigint NOT NULL CHECK (sell_value >= 0),
    buy_value       bigint NOT NULL CHECK (buy_value >= 0),
    net_value       bigint NOT NULL,
    PRIMARY KEY (ticker, trade_date, investor),
    CHECK (net_volume = buy_volume - sell_volume),
    CHECK (net_value = buy_value - sell_value)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS krx_investor_trading_trade_date_idx ON krx_investor_trading (trade_date, investor);

-- ---------------------------------------------------------------------------------------------
-- Fundamentals per ticker (MDCSTAT03501, all tickers): KRX's figures from the last annual report
-- at the day's close. eps/bps/dps in won; per/pbr/dividend_yield (%) as KRX rounds them.
CREATE TABLE IF NOT EXISTS krx_fundamentals (
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    trade_date      date NOT NULL,
    eps             bigint,
    per             numeric(12, 2),
    bps             bigint,
    pbr             numeric(12, 2),
    dps             bigint CHECK (dps >= 0),
    dividend_yield  numeric(10, 2) CHECK (dividend_yield >= 0),
    PRIMARY KEY (ticker, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS krx_fundamentals_trade_date_idx ON krx_fundamentals (trade_date);

-- ---------------------------------------------------------------------------------------------
-- Short sales among the day's trading (srt MDCSTAT30101, per market, shares only).
CREATE TABLE IF NOT EXISTS krx_short_selling (
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    trade_date      date NOT NULL,
    short_volume    bigint NOT NULL CHECK (short_volume >= 0),
    volume          bigint NOT NULL CHECK (volume >= 0),
    short_value     bigint NOT NULL CHECK (short_value >= 0),
    trading_value   bigint NOT NULL CHECK (trading_value >= 0),
    PRIMARY KEY (ticker, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS krx_short_selling_trade_date_idx ON krx_short_selling (trade_date);

-- Outstanding short positions (srt MDCSTAT30501, per market). KRX publishes a day's balances two
-- sessions later (reporting lag): the row's trade_date is the day the balance stood, not the load day.
CREATE TABLE IF NOT EXISTS krx_short_balance (
    ticker           text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    trade_date       date NOT NULL,
    balance_quantity bigint NOT NULL CHECK (balance_quantity >= 0),
    balance_value    bigint CHECK (balance_value >= 0),
    listed_shares    bigint CHECK (listed_shares >= 0),
    market_cap       bigint CHECK (market_cap >= 0),
    balance_ratio    numeric(10, 2) CHECK (balance_ratio >= 0),
    PRIMARY KEY (ticker, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS krx_short_balance_trade_date_idx ON krx_short_balance (trade_date);

-- ---------------------------------------------------------------------------------------------
-- Foreign ownership per ticker (MDCSTAT03701, all tickers): shares held by foreigners, the
-- foreign ownership limit (= listed shares when unrestricted) and how much of it is used.
CREATE TABLE IF NOT EXISTS krx_foreign_ownership (
    ticker                 text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    trade_date             date NOT NULL,
    listed_shares          bigint CHECK (listed_shares >= 0),
    foreign_held           bigint NOT NULL CHECK (foreign_held >= 0),
    foreign_share_rate     numeric(10, 2) CHECK (foreign_share_rate >= 0),
    foreign_limit          bigint CHECK (foreign_limit >= 0),
    limit_exhaustion_rate  numeric(10, 2) CHECK (limit_exhaustion_rate >= 0),
    PRIMARY KEY (ticker, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS krx_foreign_ownership_trade_date_idx ON krx_foreign_ownership (trade_date);

INSERT INTO krxflow_partitioning (parent_table, key_column, granularity, premake, retention_days) VALUES
    ('krx_index_prices',      'trade_date', 'month', 3, NULL),
    ('krx_investor_trading',  'trade_date', 'month', 3, NULL),
    ('krx_fundamentals',      'trade_date', 'month', 3, NULL),
    ('krx_short_selling',     'trade_date', 'month', 3, NULL),
    ('krx_short_balance',     'trade_date', 'month', 3, NULL),
    ('krx_foreign_ownership', 'trade_date', 'month', 3, NULL)
ON CONFLICT (parent_table) DO NOTHING;

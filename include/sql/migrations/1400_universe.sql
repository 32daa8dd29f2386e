-- What the market was on any date (issue 27): industries, index constituents and delistings,
-- point in time. Written only through BatchedPostgresHook by krxflow.krx.universe (the krx_universe
-- DAG). Not partitioned: a row is a period (thousands of rows, not millions), and point-in-time
-- queries look up one ticker or one index at a time through the indexes below.
-- Periods are half-open: [valid_from, valid_to), [entered_on, exited_on); NULL end = still so.

-- ---------------------------------------------------------------------------------------------
-- Industry (업종) of each ticker, from KRX's industry report (MDCSTAT03901, per market and day).
-- A reclassification closes one period and opens the next, and is also kept in stock_changes
-- (field 'industry'), like a rename.
CREATE TABLE IF NOT EXISTS krx_industry_history (
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    valid_from      date NOT NULL,
    valid_to        date,
    market          text NOT NULL CHECK (market IN ('KOSPI', 'KOSDAQ')),
    industry        text NOT NULL,
    PRIMARY KEY (ticker, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX IF NOT EXISTS krx_industry_history_period_idx
    ON krx_industry_history (valid_from, valid_to) INCLUDE (ticker, market, industry);
CREATE INDEX IF NOT EXISTS krx_industry_history_industry_idx ON krx_industry_history (market, industry);
COMMENT ON TABLE krx_industry_history IS
    'KRX industry of each ticker per period [valid_from, valid_to) (MDCSTAT03901); industry_on(ticker, date).';

-- Constituents of the followed indices (KOSPI 200, KOSDAQ 150, KRX 300, the KOSPI/KOSDAQ sector
-- indices) from KRX's constituent report (MDCSTAT00601): a row per membership period.
CREATE TABLE IF NOT EXISTS krx_index_members (
    index_code      text NOT NULL CHECK (index_code ~ '^[0-9]{4}$'),
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    entered_on      date NOT NULL,
    exited_on       date,
    PRIMARY KEY (index_code, ticker, entered_on),
    CHECK (exited_on IS NULL OR exited_on > entered_on)
);
CREATE INDEX IF NOT EXISTS krx_index_members_period_idx
    ON krx_index_members (index_code, entered_on, exited_on) INCLUDE (ticker);
CREATE INDEX IF NOT EXISTS krx_index_members_ticker_idx ON krx_index_members (ticker, entered_on);
COMMENT ON TABLE krx_index_members IS
    'Index constituents per period [entered_on, exited_on) (MDCSTAT00601); universe_on(index, date).';

-- KRX's delisted issues (MDCSTAT23801): shares of KOSPI, KOSDAQ and KONEX, with KRX's date, reason
-- and the successor code (a merger's acquirer, the KOSDAQ code of a KONEX company that moved up).
-- A code can be reused after a delisting: the key is (ticker, delisted_on).
CREATE TABLE IF NOT EXISTS krx_delistings (
    ticker                  text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    delisted_on             date NOT NULL,
    name                    text NOT NULL,
    market                  text NOT NULL CHECK (market IN ('KOSPI', 'KOSDAQ', 'KONEX')),
    security_group          text,
    share_kind              text,
    listed_on               date,
    reason                  text,
    successor_ticker        text CHECK (successor_ticker IS NULL OR successor_ticker ~ '^[0-9A-Z]{6}$'),
    successor_name          text,
    arranged_trading_from   date,
    arranged_trading_to     date,
    industry                text,
    par_value               bigint CHECK (par_value >= 0),
    listed_shares           bigint CHECK (listed_shares >= 0),
    PRIMARY KEY (ticker, delisted_on)
);
CREATE INDEX IF NOT EXISTS krx_delistings_delisted_on_idx ON krx_delistings (delisted_on);
CREATE INDEX IF NOT EXISTS krx_delistings_successor_idx ON krx_delistings (successor_ticker)
    WHERE successor_ticker IS NOT NULL;
COMMENT ON TABLE krx_delistings IS
    'KRX delisted shares (MDCSTAT23801): date, reason, successor code; stocks.delisted_on follows it.';

-- What was asked of KRX and when: one row per report, subject (a market, an index code, or the
-- delistings window ''ALL'') and session. The loader decides from it what a session must ask again
-- (the stalest index, a week-old delistings check) and refuses to rewrite history from an older day.
CREATE TABLE IF NOT EXISTS krx_universe_checks (
    report          text NOT NULL CHECK (report IN ('industries', 'index_members', 'delistings')),
    subject         text NOT NULL,
    checked_on      date NOT NULL,
    rows            integer NOT NULL CHECK (rows >= 0),
    PRIMARY KEY (report, subject, checked_on)
);

-- An industry change is a change of the ticker master, recorded like a rename.
ALTER TABLE stock_changes DROP CONSTRAINT IF EXISTS stock_changes_field_check;
ALTER TABLE stock_changes ADD CONSTRAINT stock_changes_field_check
    CHECK (field IN ('name', 'market', 'delisted', 'industry'));

-- ---------------------------------------------------------------------------------------------
-- Point in time.
CREATE OR REPLACE FUNCTION industry_on(p_ticker text, p_day date) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT industry FROM krx_industry_history
    WHERE ticker = p_ticker AND valid_from <= p_day AND (valid_to IS NULL OR valid_to > p_day)
    ORDER BY valid_from DESC LIMIT 1
$$;
COMMENT ON FUNCTION industry_on(text, date) IS
    'KRX industry of a ticker on a date (NULL: not known to krx_industry_history then).';

CREATE OR REPLACE FUNCTION industries_on(p_day date)
RETURNS TABLE (ticker text, market text, industry text, since date)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT h.ticker, h.market, h.industry, h.valid_from FROM krx_industry_history h
    WHERE h.valid_from <= p_day AND (h.valid_to IS NULL OR h.valid_to > p_day)
$$;
COMMENT ON FUNCTION industries_on(date) IS 'Every ticker''s KRX industry on a date.';

-- p_index: an index code (1028) or an index name of krx_indices (코스피 200; a name two groups share,
-- like 화학, resolves to the lower code: use codes).
CREATE OR REPLACE FUNCTION universe_on(p_index text, p_day date)
RETURNS TABLE (ticker text, entered_on date)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT m.ticker, m.entered_on FROM krx_index_members m
    WHERE m.index_code = COALESCE((SELECT i.index_code FROM krx_indices i WHERE i.name = p_index
                                    AND p_index !~ '^[0-9]{4}$' ORDER BY i.index_code LIMIT 1), p_index)
      AND m.entered_on <= p_day AND (m.exited_on IS NULL OR m.exited_on > p_day)
$$;
COMMENT ON FUNCTION universe_on(text, date) IS
    'Constituents of an index (code or name) on a date, from krx_index_members.';

-- Cap-weighted return of each industry on a session: every ticker's change against its base price
-- (KRX's change_rate), weighted by its market cap at the base price (cap / (1 + rate)), so that the
-- result is the industry's change in total market value net of corporate actions.
CREATE OR REPLACE FUNCTION industry_returns_on(p_day date)
RETURNS TABLE (market text, industry text, tickers integer, market_cap bigint, change_rate numeric)
LANGUAGE sql STABLE AS $$
    SELECT i.market, i.industry, count(*)::integer, sum(p.market_cap)::bigint,
           round(100 * (sum(p.market_cap) / nullif(sum(p.market_cap / (1 + p.change_rate / 100)), 0) - 1), 2)
    FROM industries_on(p_day) i
    JOIN daily_prices p ON p.ticker = i.ticker AND p.trade_date = p_day
    WHERE p.market_cap IS NOT NULL AND p.change_rate IS NOT NULL AND p.change_rate > -100
    GROUP BY i.market, i.industry
$$;
COMMENT ON FUNCTION industry_returns_on(date) IS
    'Per market and industry on a session: tickers, market cap, cap-weighted return (%) against base prices.';

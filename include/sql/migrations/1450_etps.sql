-- ETFs and ETNs (issue 27, point 4): the master of every exchange-traded product KRX lists and
-- their daily prices, NAV (an ETN's indicative value, IV) and underlying index, by session.
-- Written only through BatchedPostgresHook by krxflow.krx.etps (the krx_etf DAG): one all-ETF
-- request (MDCSTAT04301) and one all-ETN request (MDCSTAT06401) a session; the issuers and listing
-- dates come from KRX's base-info screens (MDCSTAT04601 / MDCSTAT06701) when new codes appear.

-- ---------------------------------------------------------------------------------------------
-- The master. first_seen/last_seen: the first and last loaded session that listed the code;
-- delisted_on: the first loaded session after last_seen (the code no longer listed), whatever the
-- order the sessions were loaded in. underlying_index/name follow the newest session seen.
CREATE TABLE IF NOT EXISTS krx_etps (
    code              text PRIMARY KEY CHECK (code ~ '^[0-9A-Z]{6}$'),
    kind              text NOT NULL CHECK (kind IN ('ETF', 'ETN')),
    name              text NOT NULL,
    isin              text CHECK (isin IS NULL OR isin ~ '^KR[0-9A-Z]{10}$'),
    underlying_index  text,
    issuer            text,
    multiplier        numeric(6, 2),
    listed_on         date,
    last_trading_on   date,
    info_checked_on   date,
    first_seen        date,
    last_seen         date,
    delisted          boolean NOT NULL DEFAULT false,
    delisted_on       date,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (delisted_on IS NULL OR last_seen IS NULL OR delisted_on > last_seen)
);
CREATE INDEX IF NOT EXISTS krx_etps_kind_idx ON krx_etps (kind, code);
CREATE INDEX IF NOT EXISTS krx_etps_period_idx ON krx_etps (first_seen, last_seen);
COMMENT ON TABLE krx_etps IS
    'ETF/ETN master: kind, name, ISIN, underlying index, issuer (운용사/발행사), leverage multiplier, '
    'KRX listing date (ETN: last trading day), first/last loaded session listing it, delisted_on.';
COMMENT ON COLUMN krx_etps.multiplier IS
    'The product''s exposure to its index (1, 2, -1, -2), from KRX''s base info; NULL when KRX does not say.';
COMMENT ON COLUMN krx_etps.info_checked_on IS
    'The session KRX''s base-info screen was last read for this code (asked once per new code).';

-- ---------------------------------------------------------------------------------------------
-- Daily prices as KRX publishes them. nav: an ETF's NAV, an ETN's IV (지표가치), 2 decimals.
-- net_assets: an ETF's net assets (순자산총액), an ETN's indicative value total (지표가치총액); KRX
-- computes them overnight, so the same-day answer's 0 is stored as NULL. index_*: the underlying
-- index's close, change and change rate that day. Halted days: open/high/low NULL (KRX's "0").
CREATE TABLE IF NOT EXISTS krx_etp_prices (
    code               text NOT NULL CHECK (code ~ '^[0-9A-Z]{6}$'),
    trade_date         date NOT NULL,
    open               bigint CHECK (open >= 0),
    high               bigint CHECK (high >= 0),
    low                bigint CHECK (low >= 0),
    close              bigint NOT NULL CHECK (close >= 0),
    change             bigint,
    change_rate        numeric(10, 2),
    nav                numeric(14, 2) CHECK (nav >= 0),
    volume             bigint NOT NULL CHECK (volume >= 0),
    trading_value      bigint CHECK (trading_value >= 0),
    market_cap         bigint CHECK (market_cap >= 0),
    net_assets         bigint CHECK (net_assets >= 0),
    listed_units       bigint CHECK (listed_units >= 0),
    index_close        numeric(14, 2),
    index_change       numeric(14, 2),
    index_change_rate  numeric(10, 2),
    PRIMARY KEY (code, trade_date)
) PARTITION BY RANGE (trade_date);
CREATE INDEX IF NOT EXISTS krx_etp_prices_trade_date_idx ON krx_etp_prices (trade_date);

INSERT INTO krxflow_partitioning (parent_table, key_column, granularity, premake, retention_days) VALUES
    ('krx_etp_prices', 'trade_date', 'month', 3, NULL)
ON CONFLICT (parent_table) DO NOTHING;

-- ---------------------------------------------------------------------------------------------
-- Tracking figures per product and session, derived from what KRX publishes:
--   deviation_rate      (close - NAV) / NAV in % : KRX's 괴리율 (premium or discount to NAV);
--   nav_change_rate     NAV against the product's previous loaded session, %;
--   tracking_difference nav_change_rate - multiplier x index_change_rate, in percentage points
--                       (NULL where the multiplier is unknown). KRX's 추적오차율 is the yearly
--                       standard deviation of these differences: etp_tracking_error(code, from, to).
CREATE OR REPLACE VIEW krx_etp_tracking AS
SELECT p.code, p.trade_date, p.close, p.nav, p.index_close, p.index_change_rate,
       round(100 * (p.close - p.nav) / nullif(p.nav, 0), 2) AS deviation_rate,
       round(100 * (p.nav / nullif(lag(p.nav) OVER w, 0) - 1), 2) AS nav_change_rate,
       round(100 * (p.nav / nullif(lag(p.nav) OVER w, 0) - 1) - e.multiplier * p.index_change_rate, 2)
           AS tracking_difference
FROM krx_etp_prices p
JOIN krx_etps e ON e.code = p.code
WINDOW w AS (PARTITION BY p.code ORDER BY p.trade_date);
COMMENT ON VIEW krx_etp_tracking IS
    'ETF/ETN deviation from NAV (괴리율), NAV change and tracking difference against the index, per session.';

CREATE OR REPLACE FUNCTION etp_tracking_error(p_code text, p_from date, p_to date) RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT round(stddev_samp(t.tracking_difference) * sqrt(250::numeric), 2)
    FROM (
        SELECT round(100 * (p.nav / nullif(lag(p.nav) OVER w, 0) - 1) - e.multiplier * p.index_change_rate, 4)
                   AS tracking_difference, p.trade_date
        FROM krx_etp_prices p JOIN krx_etps e ON e.code = p.code
        WHERE p.code = p_code AND p.trade_date BETWEEN p_from AND p_to
        WINDOW w AS (ORDER BY p.trade_date)
    ) t
    WHERE t.tracking_difference IS NOT NULL
$$;
COMMENT ON FUNCTION etp_tracking_error(text, date, date) IS
    'Annualised tracking error (%, stddev of daily tracking differences x sqrt(250)) of one ETF/ETN over a period.';

CREATE OR REPLACE FUNCTION etps_on(p_day date)
RETURNS TABLE (code text, kind text, name text, underlying_index text, issuer text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT e.code, e.kind, e.name, e.underlying_index, e.issuer FROM krx_etps e
    WHERE e.first_seen <= p_day AND (e.delisted_on IS NULL OR e.delisted_on > p_day)
$$;
COMMENT ON FUNCTION etps_on(date) IS 'The ETFs/ETNs listed on a date (first loaded session <= date < delisted_on).';

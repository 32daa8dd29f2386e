-- OpenDART (issue 28, point 3): major accounts (fnlttMultiAcnt) of periodic reports, stored long,
-- and the key items as known on a date. Written only through BatchedPostgresHook by
-- krxflow.dart.statements (the dart_disclosures DAG's `statements` task).

-- ---------------------------------------------------------------------------------------------
-- One row per filing (rcept_no), statement (fs_div CFS consolidated / OFS separate; sj_div BS/IS)
-- and account, as fnlttMultiAcnt serves them. Every filing is kept: a correction ([기재정정]) is a
-- new rcept_no and supersedes the earlier one from its receipt date on (financial_key_items_as_of).
-- rcept_dt is the receipt date (the first 8 digits of rcept_no, OpenDART's numbering).
-- Amounts in `currency` units (KRW), NULL where OpenDART gives none; thstrm = this period (IS: the
-- 3 or 6 months of a quarterly / half-year report; *_add_amount the year to date), frmtrm = the
-- prior year's (BS: its year end).
CREATE TABLE IF NOT EXISTS financial_statements (
    rcept_no           text NOT NULL CHECK (rcept_no ~ '^[0-9]{14}$'),
    rcept_dt           date NOT NULL,
    corp_code          text NOT NULL CHECK (corp_code ~ '^[0-9]{8}$'),
    ticker             text CHECK (ticker IS NULL OR ticker ~ '^[0-9A-Z]{6}$'),
    bsns_year          smallint NOT NULL CHECK (bsns_year >= 2015),
    reprt_code         text NOT NULL CHECK (reprt_code IN ('11011', '11012', '11013', '11014')),
    fs_div             text NOT NULL CHECK (fs_div IN ('CFS', 'OFS')),
    sj_div             text NOT NULL,
    account_nm         text NOT NULL,
    ord                integer,
    thstrm_amount      numeric,
    thstrm_add_amount  numeric,
    frmtrm_amount      numeric,
    frmtrm_add_amount  numeric,
    currency           text NOT NULL DEFAULT 'KRW',
    loaded_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rcept_no, fs_div, sj_div, account_nm),
    CHECK (rcept_dt = to_date(left(rcept_no, 8), 'YYYYMMDD'))
);
CREATE INDEX IF NOT EXISTS financial_statements_known_idx
    ON financial_statements (corp_code, bsns_year, reprt_code, rcept_dt DESC, rcept_no DESC);
CREATE INDEX IF NOT EXISTS financial_statements_ticker_idx ON financial_statements (ticker, bsns_year, reprt_code);
COMMENT ON TABLE financial_statements IS
    'OpenDART fnlttMultiAcnt major accounts per filing (rcept_no), CFS/OFS, BS/IS, long; corrections are new rcept_no.';

-- ---------------------------------------------------------------------------------------------
-- The key items of every company's periodic reports as known at the end of `as_of` (a KST date):
-- for each (corp_code, bsns_year, reprt_code) the latest filing received on or before `as_of`
-- (a correction supersedes the original from its receipt date; nothing before the first filing),
-- one row per fs_div. revenue = 매출액 (or 수익(매출액)/영업수익), net_income = 당기순이익
-- (or 당기순이익(손실)); amounts of this period (IS: the report's 3/6/12 months).
-- Shares outstanding are not among fnlttMultiAcnt's accounts (see docs/dart.md).
CREATE OR REPLACE FUNCTION financial_key_items_as_of(as_of date)
RETURNS TABLE (corp_code text, ticker text, bsns_year smallint, reprt_code text, fs_div text, rcept_no text,
               rcept_dt date, revenue numeric, operating_income numeric, net_income numeric,
               total_assets numeric, total_equity numeric, currency text)
LANGUAGE sql STABLE AS $$
    WITH latest AS (
        SELECT DISTINCT ON (f.corp_code, f.bsns_year, f.reprt_code) f.rcept_no
        FROM financial_statements f
        WHERE f.rcept_dt <= as_of
        ORDER BY f.corp_code, f.bsns_year, f.reprt_code, f.rcept_dt DESC, f.rcept_no DESC
    )
    SELECT f.corp_code, max(f.ticker), f.bsns_year, f.reprt_code, f.fs_div, f.rcept_no, f.rcept_dt,
           max(f.thstrm_amount) FILTER (WHERE f.sj_div IN ('IS', 'CIS') AND f.account_nm IN ('매출액', '수익(매출액)', '영업수익')),
           max(f.thstrm_amount) FILTER (WHERE f.sj_div IN ('IS', 'CIS') AND f.account_nm IN ('영업이익', '영업이익(손실)')),
           max(f.thstrm_amount) FILTER (WHERE f.sj_div IN ('IS', 'CIS') AND f.account_nm IN ('당기순이익', '당기순이익(손실)')),
           max(f.thstrm_amount) FILTER (WHERE f.sj_div = 'BS' AND f.account_nm = '자산총계'),
           max(f.thstrm_amount) FILTER (WHERE f.sj_div = 'BS' AND f.account_nm = '자본총계'),
           max(f.currency)
    FROM financial_statements f
    JOIN latest l ON l.rcept_no = f.rcept_no
    GROUP BY f.corp_code, f.bsns_year, f.reprt_code, f.fs_div, f.rcept_no, f.rcept_dt
$$;
COMMENT ON FUNCTION financial_key_items_as_of(date) IS
    'Key items (revenue, operating/net income, total assets/equity) of every periodic report as known on a date: '
    'never a report before its receipt date; a correction supersedes from its receipt date.';

GRANT SELECT ON financial_statements TO krxflow_readonly;
GRANT EXECUTE ON FUNCTION financial_key_items_as_of(date) TO krxflow_readonly;

-- ---------------------------------------------------------------------------------------------
-- Corporate-action events (issue 28, point 4) from the material-event reports (DS005 piicDecsn
-- 유상증자, fricDecsn 무상증자, crDecsn 감자) of the filings the disclosures show, one row per
-- filing. ratio: rights issue = new shares / shares before; bonus issue = new shares per share
-- (nstk_ascnt_ps_ostk); capital reduction = the reduction rate (cr_rt_ostk / 100). record_date is
-- the record date (신주배정기준일 / 감자기준일; the ex-date is the business day before it).
-- Written by krxflow.dart.events; cross-checked against adjustment_factors (load_stats
-- operation dart_events_cross_check).
CREATE TABLE IF NOT EXISTS corporate_actions (
    rcept_no       text PRIMARY KEY CHECK (rcept_no ~ '^[0-9]{14}$'),
    rcept_dt       date NOT NULL,
    corp_code      text NOT NULL CHECK (corp_code ~ '^[0-9]{8}$'),
    ticker         text CHECK (ticker IS NULL OR ticker ~ '^[0-9A-Z]{6}$'),
    kind           text NOT NULL CHECK (kind IN ('rights_issue', 'bonus_issue', 'capital_reduction')),
    report_nm      text NOT NULL,
    shares_before  bigint,
    new_shares     bigint,
    shares_after   bigint,
    ratio          numeric,
    record_date    date,
    listing_date   date,
    board_date     date,
    method         text,
    loaded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS corporate_actions_ticker_idx ON corporate_actions (ticker, record_date);
COMMENT ON TABLE corporate_actions IS
    'OpenDART material-event reports (rights/bonus issues, capital reductions) of the filings in disclosures.';
GRANT SELECT ON corporate_actions TO krxflow_readonly;

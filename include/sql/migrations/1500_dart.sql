-- OpenDART (issue 28): the corp-code list (corp_code <-> stock_code) and every filing of listed
-- companies by receipt date. Written only through BatchedPostgresHook by krxflow.dart.loading
-- (the dart_corp_codes and dart_disclosures DAGs).

-- ---------------------------------------------------------------------------------------------
-- corpCode.xml as OpenDART serves it, every company (about 100k, most unlisted). stock_code is
-- the KRX ticker (the link to stocks) or NULL for an unlisted company (OpenDART's single space).
-- Not a foreign key to stocks: OpenDART lists KONEX shares and companies krxflow has not loaded.
CREATE TABLE IF NOT EXISTS dart_corp_codes (
    corp_code      text PRIMARY KEY CHECK (corp_code ~ '^[0-9]{8}$'),
    corp_name      text NOT NULL,
    corp_eng_name  text,
    stock_code     text CHECK (stock_code IS NULL OR stock_code ~ '^[0-9A-Z]{6}$'),
    modify_date    date,
    loaded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dart_corp_codes_stock_idx ON dart_corp_codes (stock_code) WHERE stock_code IS NOT NULL;
COMMENT ON TABLE dart_corp_codes IS
    'OpenDART corpCode.xml: corp_code (8 digits) <-> stock_code (the KRX ticker; NULL if unlisted), names, modify_date.';

-- ---------------------------------------------------------------------------------------------
-- Filings (공시) of KOSPI (corp_cls Y) and KOSDAQ (K) companies, one row per receipt number,
-- as list.json returns them. ticker = stock_code. rm: OpenDART's remark flags as received
-- (e.g. 유, 코, 공, 연, 정, 정연; their meanings are not documented by OpenDART).
CREATE TABLE IF NOT EXISTS disclosures (
    rcept_no   text PRIMARY KEY CHECK (rcept_no ~ '^[0-9]{14}$'),
    corp_code  text NOT NULL CHECK (corp_code ~ '^[0-9]{8}$'),
    corp_name  text NOT NULL,
    corp_cls   text NOT NULL CHECK (corp_cls IN ('Y', 'K', 'N', 'E')),
    ticker     text CHECK (ticker IS NULL OR ticker ~ '^[0-9A-Z]{6}$'),
    report_nm  text NOT NULL,
    flr_nm     text NOT NULL,
    rcept_dt   date NOT NULL,
    rm         text NOT NULL DEFAULT '',
    url        text NOT NULL CHECK (url = 'https://dart.fss.or.kr/dsaf001/main.do?rcpNo=' || rcept_no),
    loaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS disclosures_ticker_idx ON disclosures (ticker, rcept_dt DESC);
CREATE INDEX IF NOT EXISTS disclosures_rcept_dt_idx ON disclosures (rcept_dt);
COMMENT ON TABLE disclosures IS
    'OpenDART list.json filings of listed companies (corp_cls Y/K) by receipt date; url opens the DART viewer.';

-- The read side (Grafana, the read API) reads both as krxflow_readonly; see 1410_universe_read_grants.sql.
GRANT SELECT ON dart_corp_codes, disclosures TO krxflow_readonly;

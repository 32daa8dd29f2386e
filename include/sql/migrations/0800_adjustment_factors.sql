-- The adjusted series from KRX's own base prices (issue 12).
--
-- KRX publishes, for every ticker and day, the change against the day's base price (기준가,
-- CMPPREVDD_PRC = close - base). Normally the base is the previous close; on an ex-date (split,
-- share consolidation, bonus or rights issue, merger) KRX sets another one. krxflow keeps the base
-- with the raw row and derives from it:
--   adjustment_factors     one row per ticker and ex-date: factor = base / previous close
--   daily_prices_adjusted  raw x the product of the factors of every later ex-date (ratio method)
-- Ordinary cash dividends get no new base in Korea (since 1998): the series is split/rights-
-- adjusted, not total return.

ALTER TABLE daily_prices ADD COLUMN IF NOT EXISTS base_price bigint CHECK (base_price >= 0);
COMMENT ON COLUMN daily_prices.base_price IS
    'KRX base price (기준가) of the day: close - CMPPREVDD_PRC. The previous close, except on an ex-date.';

CREATE TABLE IF NOT EXISTS adjustment_factors (
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    ex_date         date NOT NULL,
    previous_date   date NOT NULL,
    previous_close  bigint NOT NULL CHECK (previous_close > 0),
    base_price      bigint NOT NULL CHECK (base_price > 0),
    factor          numeric(20, 12) NOT NULL CHECK (factor > 0),
    shares_before   bigint,
    shares_after    bigint,
    kind            text NOT NULL CHECK (kind IN ('split', 'reverse_split', 'rights_or_bonus', 'unexplained')),
    flagged         boolean NOT NULL DEFAULT false,
    note            text,
    PRIMARY KEY (ticker, ex_date)
);
CREATE INDEX IF NOT EXISTS adjustment_factors_ex_date_idx ON adjustment_factors (ex_date);
COMMENT ON TABLE adjustment_factors IS
    'Ex-dates found in daily_prices where KRX''s base price differs from the previous trading row''s close. '
    'factor = base_price / previous_close; adjusted price on day d = raw x product(factor of ex-dates after d). '
    'kind: split / reverse_split (listed shares change by the inverse factor that day), rights_or_bonus '
    '(factor < 1, new shares listed later), unexplained. flagged: the factor holds more than the change in '
    'shares explains (an opening auction or market move inside it) - check it before trusting it.';

-- The ETF/ETN master as the loader diffs a session against it (krxflow.krx.etps).
SELECT code, kind, name, isin, underlying_index, issuer, multiplier::float8 AS multiplier, listed_on,
       last_trading_on, info_checked_on, first_seen, last_seen, delisted, delisted_on, updated_at
FROM krx_etps

-- One ETF/ETN of the master (NULL row: unknown code).
SELECT code, kind, name, underlying_index, issuer, multiplier::float8 AS multiplier, listed_on, delisted_on
FROM krx_etps WHERE code = %(code)s

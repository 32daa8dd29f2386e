-- The current ticker master, to compare a new listing against (renames, moves, delistings).
SELECT ticker, name, market, isin, sector, listed_shares, market_cap, first_seen, last_seen,
       delisted, delisted_on, updated_at
FROM stocks

-- Every ticker's current (open) industry period: what a session's industry answer is compared with.
SELECT ticker, valid_from, market, industry FROM krx_industry_history WHERE valid_to IS NULL

-- How many OpenDART corp codes name a ticker of stocks (krxflow.dart.loading.load_corp_codes).
SELECT count(*) AS n
FROM dart_corp_codes c
JOIN stocks s ON s.ticker = c.stock_code

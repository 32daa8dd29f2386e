-- The ex-dates of %(first)s..%(last)s, oldest first: each is cross-checked against KRX's adjusted prices.
SELECT DISTINCT ex_date FROM adjustment_factors WHERE ex_date BETWEEN %(first)s AND %(last)s ORDER BY ex_date

-- One ticker's OpenDART filings received from %(start)s to %(end)s, oldest receipt number first,
-- after receipt number %(after)s (keyset paging; NULL: from the start), %(limit)s rows.
SELECT rcept_no, rcept_dt AS date, report_nm AS report, corp_code, corp_name, flr_nm AS filer, rm AS remarks, url
FROM disclosures
WHERE ticker = %(ticker)s AND rcept_dt BETWEEN %(start)s AND %(end)s
  AND (%(after)s::text IS NULL OR rcept_no > %(after)s::text)
ORDER BY rcept_no
LIMIT %(limit)s

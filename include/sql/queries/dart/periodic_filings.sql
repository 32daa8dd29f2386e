-- The periodic reports (사업/반기/분기보고서, corrections included) among one receipt date's
-- disclosures (krxflow.dart.statements.load_statements): the companies whose statements to fetch.
SELECT rcept_no, corp_code, ticker, report_nm
FROM disclosures
WHERE rcept_dt = %(day)s
  AND report_nm ~ '(사업|반기|분기)보고서 \([0-9]{4}\.[0-9]{2}\)'
ORDER BY rcept_no

-- The material-event reports with a DS005 service (유상증자/무상증자/감자결정, corrections included)
-- among one receipt date's disclosures (krxflow.dart.events.load_corporate_actions).
SELECT rcept_no, corp_code, ticker, report_nm
FROM disclosures
WHERE rcept_dt = %(day)s
  AND report_nm ~ '주요사항보고서\((유상증자|무상증자|감자)결정\)'
ORDER BY rcept_no

-- The last session each report and subject (market, index code, ALL) was asked of KRX.
SELECT report, subject, max(checked_on) AS checked_on FROM krx_universe_checks GROUP BY report, subject

-- Adjustment factors (ex-dates) of first..last that no filed event explains
-- (krxflow.dart.events.cross_check_factors): a rights/bonus issue or capital reduction of the
-- ticker whose record date is 0-7 days after the ex-date, or for a split / reverse split a filing
-- naming a split or share consolidation (주식분할/액면분할/주식병합) in the 120 days before.
-- Both sides: the factor, and the ticker's filed events within 120 days of it.
SELECT f.ticker, f.ex_date, f.factor, f.kind,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('rcept_no', a.rcept_no, 'kind', a.kind,
                                                     'record_date', a.record_date, 'ratio', a.ratio)
                                  ORDER BY a.record_date), '[]'::jsonb)
        FROM corporate_actions a
        WHERE a.ticker = f.ticker AND a.record_date BETWEEN f.ex_date - 120 AND f.ex_date + 120) AS filed_nearby
FROM adjustment_factors f
WHERE f.ex_date BETWEEN %(first)s AND %(last)s
  AND NOT EXISTS (SELECT 1 FROM corporate_actions a
                  WHERE a.ticker = f.ticker AND a.record_date BETWEEN f.ex_date AND f.ex_date + 7)
  AND NOT (f.kind IN ('split', 'reverse_split')
           AND EXISTS (SELECT 1 FROM disclosures d
                       WHERE d.ticker = f.ticker AND d.rcept_dt BETWEEN f.ex_date - 120 AND f.ex_date
                         AND d.report_nm ~ '(주식분할|액면분할|주식병합)'))
ORDER BY f.ex_date, f.ticker

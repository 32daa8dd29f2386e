-- The indices of the KOSPI and KOSDAQ groups: those named after an industry are the sector indices
-- (KRX names its sector indices after the industries of its industry report).
SELECT index_code, name, index_group AS market FROM krx_indices WHERE index_group IN ('KOSPI', 'KOSDAQ')

-- The read side reads the universe (issue 27): Grafana's sector heat map (industry_returns_on) and
-- index-membership panel (krx_index_members, industry_on) and the read API run as krxflow_readonly.
--
-- 0400's default privileges already give the role SELECT on the tables 1400_universe.sql made
-- (same migrating role), and PostgreSQL lets PUBLIC execute new functions. Both are said here
-- explicitly, so that the read side keeps working where an administrator revoked EXECUTE from
-- PUBLIC (a common hardening) or migrated as another role. GRANT is idempotent.
GRANT SELECT ON krx_industry_history, krx_index_members, krx_delistings, krx_universe_checks TO krxflow_readonly;
GRANT EXECUTE ON FUNCTION industry_on(text, date), industries_on(date), universe_on(text, date),
    industry_returns_on(date) TO krxflow_readonly;

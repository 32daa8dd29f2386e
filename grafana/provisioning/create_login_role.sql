-- Create (or update) the login role Grafana connects as: a member of krxflow_readonly, read-only
-- by default, with a password that comes from the deployment's environment, never from the repo.
--
--   psql "$KRXFLOW_ADMIN_DSN" -v ON_ERROR_STOP=1 \
--        -v grafana_user="${KRXFLOW_GRAFANA_DB_USER:-krxflow_grafana}" \
--        -v grafana_password="$KRXFLOW_GRAFANA_DB_PASSWORD" \
--        -f grafana/provisioning/create_login_role.sql
--
-- Run it after `python -m krxflow.db migrate` (migration 0400 creates krxflow_readonly).
-- psql quotes :"grafana_user" as an identifier and :'grafana_password' as a literal.

\set ON_ERROR_STOP on
\if :{?grafana_user}
\else
    DO $$ BEGIN RAISE EXCEPTION 'create_login_role.sql: pass -v grafana_user=<login role name>'; END $$;
\endif
\if :{?grafana_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'create_login_role.sql: pass -v grafana_password=<password from the environment>'; END $$;
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'grafana_user') AS grafana_role_missing \gset
\if :grafana_role_missing
    CREATE ROLE :"grafana_user" LOGIN INHERIT;
\endif
ALTER ROLE :"grafana_user" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'grafana_password';
GRANT krxflow_readonly TO :"grafana_user";
-- Belt and braces: even a mistaken grant elsewhere cannot make a Grafana query write.
ALTER ROLE :"grafana_user" SET default_transaction_read_only = on;
ALTER ROLE :"grafana_user" SET statement_timeout = '30s';

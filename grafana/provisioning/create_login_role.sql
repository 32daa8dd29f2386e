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

-- Roles are cluster-wide: two deployments on one server may run this at the same moment. The
-- CREATE tolerates the other one winning (a check-then-create would fail the loser on
-- pg_authid's key), and PostgreSQL refuses an ALTER/GRANT of a role another session is changing
-- right then ("tuple concurrently updated", SQLSTATE XX000): those steps are retried a few times.
SELECT set_config('krxflow.grafana_user', :'grafana_user', false) AS grafana_user,
       set_config('krxflow.grafana_password', :'grafana_password', false) IS NOT NULL AS password_set \gset
DO $$
DECLARE
    login text := current_setting('krxflow.grafana_user');
BEGIN
    FOR attempt IN 1..10 LOOP
        BEGIN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN INHERIT', login);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- it exists, or another session just created it
            END;
            EXECUTE format('ALTER ROLE %I WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
                           'PASSWORD %L', login, current_setting('krxflow.grafana_password'));
            EXECUTE format('GRANT krxflow_readonly TO %I', login);
            -- Belt and braces: even a mistaken grant elsewhere cannot make a Grafana query write.
            EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', login);
            EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', login, '30s');
            RETURN;
        EXCEPTION WHEN internal_error THEN
            IF attempt = 10 THEN
                RAISE;
            END IF;
            PERFORM pg_sleep(0.02 * attempt);
        END;
    END LOOP;
END $$;
SELECT set_config('krxflow.grafana_password', '', false) \gset

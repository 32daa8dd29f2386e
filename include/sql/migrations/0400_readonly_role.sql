-- krxflow_readonly: the read side's group role (Grafana, ad-hoc analysts). SELECT only.
--
-- The role is NOLOGIN and has no password, so no secret lives in this repository. A deployment
-- creates the login role that Grafana uses, with a password it takes from its own environment,
-- and makes it a member of krxflow_readonly (grafana/provisioning/create_login_role.sql, run with
-- psql -v grafana_user=... -v grafana_password="$KRXFLOW_GRAFANA_DB_PASSWORD").
--
-- Roles are cluster-wide, so the role is created only when missing; the grants are per database.
-- Later objects: ALTER DEFAULT PRIVILEGES covers every table, view and materialized view that
-- the migrating role creates from now on (new migrations, new partitions made by the writer).
-- Partitions need no grant of their own: reading through the parent checks only the parent.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'krxflow_readonly') THEN
        CREATE ROLE krxflow_readonly NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO krxflow_readonly', current_database());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO krxflow_readonly', current_schema());
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO krxflow_readonly', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO krxflow_readonly',
                   current_schema());
    -- Sequences are read by nothing on the read side; functions keep PostgreSQL's defaults.
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM krxflow_readonly', current_schema());
END
$$;

COMMENT ON ROLE krxflow_readonly IS
    'krxflow read side (Grafana, analysts): SELECT on the market schema only; NOLOGIN, login roles are granted membership.';

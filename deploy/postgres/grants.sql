-- Least-privilege roles for the processes of governance-assets (docs/operations.md, "Roles and grants").
--
-- Run as a PostgreSQL superuser once `govern db upgrade` and `govern init` have created the tables (as the
-- databases' owner, `govern`), and again after every `govern db upgrade`: a table a migration adds gets its
-- grants here. Running it again is harmless: it creates a role only where it is missing and resets each role's
-- privileges on the three databases to exactly these.
--
--   psql -v ON_ERROR_STOP=1 -d postgresql://postgres@db/postgres -f deploy/postgres/grants.sql
--
-- Names differ from the defaults below? Pass them: -v serving=... -v governance_db=... and so on.
-- Roles are created with LOGIN and no password: give each one with `\password ROLE` (psql), kept in your secret
-- store. None of them owns anything; the owner (`govern`) runs only `govern db upgrade` and `govern init`.

\if :{?governance_db} \else \set governance_db governance \endif
\if :{?mlflow_db} \else \set mlflow_db mlflow \endif
\if :{?dagster_db} \else \set dagster_db dagster \endif
\if :{?serving} \else \set serving govern_serving \endif
\if :{?guard} \else \set guard govern_guard \endif
\if :{?dagster} \else \set dagster govern_dagster \endif
\if :{?operator} \else \set operator govern_operator \endif
\if :{?retention} \else \set retention govern_retention \endif

SELECT format('CREATE ROLE %I LOGIN', name)
FROM unnest(ARRAY[:'serving', :'guard', :'dagster', :'operator', :'retention']) AS wanted(name)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec

-- Only these roles (and the owner) connect.
REVOKE CONNECT, TEMPORARY ON DATABASE :"governance_db", :"mlflow_db", :"dagster_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"governance_db" TO :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT CONNECT ON DATABASE :"mlflow_db" TO :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT CONNECT ON DATABASE :"dagster_db" TO :"dagster", :"operator";

-- The ledger, signed statements, control state, API tokens and decision log.
\connect :governance_db
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"serving", :"guard", :"dagster", :"operator", :"retention";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT USAGE ON SCHEMA public TO :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO :"serving", :"guard", :"dagster", :"operator", :"retention";
-- Everyone appends to the ledger (serving its incidents and refused tokens); nobody changes or deletes an entry,
-- except retention, which only expires payloads (the digests and the chain stay).
GRANT INSERT ON ledger_entries, ledger_nodes TO :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT UPDATE (payload) ON ledger_entries TO :"retention";
-- Serving logs decisions; people's labels import joins outcomes; retention expires inputs and sealed ranges.
GRANT INSERT ON decisions TO :"serving";
GRANT UPDATE (label, labelled_at) ON decisions TO :"operator";
GRANT UPDATE (features, protected), DELETE ON decisions TO :"retention";
-- Signed statements (a statement row records the ledger entry that recorded it) and the kill switch: whoever
-- signs, people and the system key's holders (the guard, the Dagster code).
GRANT INSERT ON signed_statements, kill_switches TO :"guard", :"dagster", :"operator";
GRANT UPDATE (ledger_entry_hash) ON signed_statements TO :"guard", :"dagster", :"operator";
GRANT UPDATE ON kill_switches TO :"guard", :"dagster", :"operator";
-- Moves of the champion: releases and remediation (Dagster), a person's rollback and `govern status`'s recovery.
GRANT INSERT, UPDATE ON deployments TO :"dagster", :"operator";
GRANT INSERT, UPDATE, DELETE ON monitoring_leases TO :"guard", :"dagster", :"operator", :"retention";
GRANT INSERT, UPDATE (revoked_at) ON api_tokens TO :"operator";

-- MLflow's tracking and registry store: Dagster's runs train and register; a person's rollback moves the alias.
\connect :mlflow_db
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"serving", :"guard", :"dagster", :"operator", :"retention";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT USAGE ON SCHEMA public TO :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"dagster";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO :"dagster";
GRANT INSERT, UPDATE, DELETE ON registered_model_aliases TO :"operator";

-- Dagster's runs, events and schedules: its own processes; `govern status` reads them.
\connect :dagster_db
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"serving", :"guard", :"dagster", :"operator", :"retention";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"serving", :"guard", :"dagster", :"operator", :"retention";
GRANT USAGE ON SCHEMA public TO :"dagster", :"operator";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"dagster", :"operator";
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"dagster";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO :"dagster";

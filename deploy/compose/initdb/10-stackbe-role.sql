-- The database role StackBE's services log in as under `docker compose`. The postgres
-- image runs this once, when it first makes its data directory, with psql as its
-- superuser ($POSTGRES_USER) against $POSTGRES_DB.
--
-- The role is neither superuser nor BYPASSRLS, so the row-level security policies hold
-- for every query the services make (docs/reliability.md). It may create schemas in the
-- database, which is all the services' migrations need: each service owns its schema.
-- Its name and password come from the container's environment (psql 15's \getenv),
-- so the password is never on a command line.

\set ON_ERROR_STOP on
\getenv role STACKBE_DATABASE_USER
\getenv password STACKBE_DATABASE_PASSWORD
\if :{?role}
\else
  \set role stackbe
\endif
\if :{?password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'set STACKBE_DATABASE_PASSWORD in .env (see .env.example)'; END $$;
\endif

CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
  PASSWORD :'password';
SELECT format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO %I',
              current_database(), :'role') \gexec

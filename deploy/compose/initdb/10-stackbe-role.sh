#!/usr/bin/env bash
# The database role StackBE's services log in as under `docker compose`. The postgres
# image runs this once, when it first makes its data directory, as its superuser
# ($POSTGRES_USER) against $POSTGRES_DB.
#
# The role is neither superuser nor BYPASSRLS, so the row-level security policies hold
# for every query the services make (docs/reliability.md). It may create schemas in the
# database, which is all the services' migrations need: each service owns its schema.
set -euo pipefail

role="${STACKBE_DATABASE_USER:-stackbe}"
: "${STACKBE_DATABASE_PASSWORD:?set STACKBE_DATABASE_PASSWORD (see .env.example)}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set role="$role" --set password="$STACKBE_DATABASE_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
  PASSWORD :'password';
SELECT format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO %I',
              current_database(), :'role') \gexec
SQL

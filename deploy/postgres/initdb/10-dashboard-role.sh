#!/bin/sh
# Creates the PostgreSQL role the sweepscope dashboard logs in as, with the password in
# $DASHBOARD_DB_PASSWORD; the role name is $DASHBOARD_DB_USER (default sweepscope_dashboard).
#
# The postgres image runs this once, from /docker-entrypoint-initdb.d, when it initialises
# an empty data volume (docker-compose.yml mounts this directory there). The role gets no
# privileges here: the tables do not exist yet. `sweepscope migrate --grant-dashboard ROLE`
# (the compose service `migrate`) grants them once they do.
#
# Rerunning it sets the password anew, for a volume made before this script existed or to
# rotate the password (see docs/cluster.md):
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-dashboard-role.sh
# psql quotes both values itself (:"role" as an identifier, :'password' as a literal).
set -e

if [ -z "${DASHBOARD_DB_PASSWORD:-}" ]; then
    echo "10-dashboard-role.sh: DASHBOARD_DB_PASSWORD is empty; set it in .env" >&2
    exit 1
fi

psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=role="${DASHBOARD_DB_USER:-sweepscope_dashboard}" \
    --set=password="$DASHBOARD_DB_PASSWORD" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') AS missing \gset
\if :missing
CREATE ROLE :"role" LOGIN;
\endif
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SQL

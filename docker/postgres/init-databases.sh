#!/bin/sh
# The cluster shape's two databases and their owners, created once: the postgres image runs the
# scripts of /docker-entrypoint-initdb.d/ only when it starts on an empty data folder.
#   metastore  the Hive Metastore's schema   (role metastore, password METASTORE_DB_PASSWORD)
#   dagster    Dagster's runs, events, ticks (role dagster, password DAGSTER_DB_PASSWORD)
# The passwords come from the container's environment (compose.yaml requires them) and reach psql
# through \getenv, never through its command line. To change one later: ALTER ROLE ... PASSWORD.
set -eu
: "${METASTORE_DB_PASSWORD:?}" "${DAGSTER_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv metastore_password METASTORE_DB_PASSWORD
\getenv dagster_password DAGSTER_DB_PASSWORD
CREATE ROLE metastore LOGIN PASSWORD :'metastore_password';
CREATE DATABASE metastore OWNER metastore;
CREATE ROLE dagster LOGIN PASSWORD :'dagster_password';
CREATE DATABASE dagster OWNER dagster;
SQL

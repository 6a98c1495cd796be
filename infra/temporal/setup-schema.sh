#!/bin/sh
# Creates (first start) or upgrades (new server version) Temporal's Postgres schemas:
# the persistence database `temporal` and the SQL visibility database `temporal_visibility`.
# Runs in temporalio/admin-tools; every step is safe to repeat.
set -eu

: "${SQL_HOST:?}" "${SQL_PORT:=5432}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
export SQL_PASSWORD
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

echo "waiting for Postgres at ${SQL_HOST}:${SQL_PORT}"
until nc -z -w 5 "$SQL_HOST" "$SQL_PORT"; do sleep 2; done

sql() {
  db=$1
  shift
  temporal-sql-tool --plugin postgres12 --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" --db "$db" "$@"
}

for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  # `create` fails when the database exists; that is the normal case on a restart.
  sql "$db" create || true
  # setup-schema -v 0.0 only initializes the version table when it is missing.
  sql "$db" setup-schema -v 0.0 || true
  sql "$db" update-schema -d "$SCHEMA_DIR/$dir/versioned"
done
echo "Temporal schemas are up to date"

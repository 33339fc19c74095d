#!/usr/bin/env bash
# make demo: a local cluster with gstjobs migrated, demo data, every job run once, and pg_cron
# left running. Idempotent: a second run reuses the cluster and the data.
set -euo pipefail
cd "$(dirname "$0")/.."

export GSTJOBS_PORT=${GSTJOBS_PORT:-54320}
export GSTJOBS_CRON_DB=${GSTJOBS_CRON_DB:-gstjobs}
scripts/cluster.sh start demo
export GSTJOBS_DSN=$(scripts/cluster.sh dsn demo)
admin_dsn="postgresql://postgres@127.0.0.1:$GSTJOBS_PORT/postgres"

if [ -z "$(psql "$admin_dsn" -XAtc "SELECT 1 FROM pg_database WHERE datname = '$GSTJOBS_CRON_DB'")" ]; then
  psql "$admin_dsn" -Xqc "CREATE DATABASE \"$GSTJOBS_CRON_DB\""
fi

echo "== migrating to head"
.venv/bin/alembic upgrade head 2>&1 | grep -v '^INFO  \[alembic.runtime.migration\] \(Context\|Will\)' || true

if [ "$(psql "$GSTJOBS_DSN" -XAtc 'SELECT count(*) FROM litigation.tenants')" = "0" ]; then
  echo "== generating demo data"
  .venv/bin/python -m gstjobs.datagen --size seed
fi

echo "== running every job once"
for job in $(psql "$GSTJOBS_DSN" -XAtc 'SELECT name FROM gstjobs.jobs ORDER BY name'); do
  psql "$GSTJOBS_DSN" -Xqc "CALL gstjobs.run_job('$job', reason => 'make demo')"
done

echo
.venv/bin/gstjobs list
cat <<EOT

pg_cron keeps running the jobs in this cluster ('make stop' stops it). To use the CLI:

  export GSTJOBS_DSN=$GSTJOBS_DSN
EOT

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

# pg_cron's launcher stops for good if its database was dropped and created again: restart.
if [ -z "$(psql "$GSTJOBS_DSN" -XAtc "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'")" ]; then
  echo "== pg_cron's launcher is not running: restarting the cluster"
  scripts/cluster.sh restart demo
fi

if [ "$(psql "$GSTJOBS_DSN" -XAtc 'SELECT count(*) FROM litigation.tenants')" = "0" ]; then
  echo "== generating demo data"
  .venv/bin/python -m gstjobs.datagen --size seed
fi

if [ "$(psql "$GSTJOBS_DSN" -XAtc 'SELECT count(*) FROM litigation.case_events')" = "0" ]; then
  echo "== recording case events: their statutory deadlines are computed (docs/DEADLINES.md)"
  # an order communicated 80 days ago, and a show cause notice under section 73 last week
  psql "$GSTJOBS_DSN" -Xq -o /dev/null <<'SQL'
INSERT INTO litigation.case_events (tenant_id, case_id, kind, event_on, document_ref, financial_year)
SELECT c.tenant_id, c.id, e.kind, current_date - e.days_ago, e.ref, e.fy
FROM (SELECT tenant_id, min(id) AS id FROM litigation.cases WHERE tenant_id = 1 GROUP BY 1) AS c,
     (VALUES ('order_communicated', 80, 'DIN 20260900000001', NULL),
             ('scn_73_issued', 7, 'DIN 20261100000042', '2023-24')) AS e (kind, days_ago, ref, fy);
SQL
  psql "$GSTJOBS_DSN" -X -c "SELECT kind, due_on AS safe, statutory_on, condonable_until FROM litigation.deadlines WHERE origin = 'computed' ORDER BY due_on"
fi

echo "== delivery: a local SMTP server for the demo's email"
scripts/mail-sink.sh start
mail=${GSTJOBS_DEMO_MAIL:-/var/tmp/gstjobs-demo-mail}
psql "$GSTJOBS_DSN" -Xq -o /dev/null \
  -c "SELECT gstjobs.set_setting('smtp.host', '127.0.0.1', 'make demo')" \
  -c "SELECT gstjobs.set_setting('smtp.port', '${GSTJOBS_DEMO_SMTP_PORT:-2525}', 'make demo')" \
  -c "SELECT gstjobs.set_setting('smtp.from', 'reminders@gstjobs.example.in', 'make demo')"

echo "== a digest: firm 1's partners take SLA breaches, overdue tasks and escalations in one email"
# due two minutes from now in the firm's zone: pg_cron's dispatch-notifications gathers and sends it
digest_at=$(psql "$GSTJOBS_DSN" -XAtq <<'SQL'
INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, email, whatsapp, digest)
SELECT m.tenant_id, m.id, k.kind, true, true, true
FROM litigation.members AS m,
     (VALUES ('sla-breach'), ('sla-breach-escalation'), ('overdue'), ('overdue-escalation')) AS k (kind)
WHERE m.tenant_id = 1 AND m.role = 'partner'
ON CONFLICT DO NOTHING;
UPDATE litigation.members AS m
SET digest_at = date_trunc('minute', (now() AT TIME ZONE t.timezone) + interval '2 minutes')::time,
    digest_days = '{1,2,3,4,5,6,7}'
FROM litigation.tenants AS t
WHERE t.id = m.tenant_id AND m.tenant_id = 1 AND m.role = 'partner'
RETURNING to_char(m.digest_at, 'HH24:MI') || ' ' || t.timezone;
SQL
)
echo "   their digest is due at ${digest_at%%$'\n'*}"

echo "== running every job once"
# A local-time job runs as of the last time its slot came round in Mumbai (plus half an hour),
# so the demo shows this morning's reminders whatever the hour; pg_cron carries on from there.
psql "$GSTJOBS_DSN" -Xq <<'SQL'
SELECT format('CALL gstjobs.run_job(%L, as_of => %L, reason => %L)', name, (
           SELECT max(moment) FROM generate_series(0, 1) AS back,
               LATERAL (SELECT ((now() AT TIME ZONE 'Asia/Kolkata')::date - back + local_time
                                + interval '30 minutes') AT TIME ZONE 'Asia/Kolkata' AS moment) AS m
           WHERE local_time IS NOT NULL AND moment <= now()), 'make demo')
FROM gstjobs.jobs ORDER BY name
\o /dev/null
\gexec
SQL


# the jobs above wrote notifications after dispatch's turn: deliver a first batch now
psql "$GSTJOBS_DSN" -Xq -o /dev/null -c "CALL gstjobs.run_job('dispatch-notifications', reason => 'make demo')"

echo
.venv/bin/gstjobs list
echo
echo "== the outbox (notifications waiting for dispatch)"
psql "$GSTJOBS_DSN" -X -c "SELECT kind, channel, status, count(*) FROM gstjobs.outbox GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
psql "$GSTJOBS_DSN" -X -c "SELECT recipient, subject FROM gstjobs.outbox WHERE kind = 'hearing-reminder' AND channel = 'email' ORDER BY id LIMIT 3"
cat <<EOT

Email arrives in the Maildir $mail/new ($(ls "$mail/new" 2>/dev/null | wc -l) messages so far;
dispatch-notifications sends every minute, within smtp.rate_per_second). What can wait is held
through each firm's quiet hours (21:00-08:00 its time: gstjobs prefs show --tenant 1). The
partners' digest ("Your digest: N notification(s)") arrives there at ${digest_at%%$'\n'*}.
WhatsApp waits until whatsapp.url and whatsapp.token are set: gstjobs config set whatsapp.url https://...

pg_cron keeps running the jobs in this cluster ('make stop' stops it and the mail sink).
To use the CLI:

  export GSTJOBS_DSN=$GSTJOBS_DSN
EOT

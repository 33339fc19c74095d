-- What operators, psql, Grafana and the CLI read. Re-applied whole on every upgrade to head.
-- Views belong to gstjobs_owner, which may read pg_cron's tables; operators read only these.

SET ROLE gstjobs_owner;

CREATE OR REPLACE VIEW gstjobs.run_history AS
    -- pg_cron's record of each tick, with the ledger's account of the run where there is one:
    -- a tick that failed before the ledger saw it (server restarted, no connection) still shows.
    SELECT coalesce(r.job, c.jobname) AS job,
           r.id AS run_id,
           d.runid AS cron_runid,
           'cron'::text AS trigger,
           coalesce(r.requested_by, d.username) AS requested_by,
           r.tenant_id,
           r.as_of,
           CASE WHEN r.id IS NULL THEN d.status ELSE r.status END AS status,
           coalesce(r.started_at, d.start_time) AS started_at,
           coalesce(r.finished_at, d.end_time) AS finished_at,
           coalesce(r.finished_at, d.end_time) - coalesce(r.started_at, d.start_time) AS duration,
           coalesce(r.counts, '{}') AS counts,
           coalesce(CASE WHEN d.status = 'failed' THEN d.return_message END, r.error) AS error,
           d.return_message AS cron_message,
           coalesce(r.dry_run, false) AS dry_run,
           r.reason
    FROM cron.job_run_details AS d
    LEFT JOIN cron.job AS c ON c.jobid = d.jobid AND c.username = 'gstjobs_runner'
    LEFT JOIN gstjobs.runs AS r ON r.cron_runid = d.runid
    -- the toolkit's ticks: of a job it schedules, or that its ledger knows (since unscheduled)
    WHERE r.id IS NOT NULL OR c.jobname IN (SELECT name FROM gstjobs.jobs)
    UNION ALL
    -- runs pg_cron never saw: by hand, or whose cron row was purged
    SELECT r.job, r.id, NULL, r.trigger, r.requested_by, r.tenant_id, r.as_of, r.status,
           r.started_at, r.finished_at, r.finished_at - r.started_at, r.counts, r.error, NULL,
           r.dry_run, r.reason
    FROM gstjobs.runs AS r
    WHERE r.cron_runid IS NULL
       OR NOT EXISTS (SELECT FROM cron.job_run_details AS d WHERE d.runid = r.cron_runid);
COMMENT ON VIEW gstjobs.run_history IS 'every run of every toolkit job: pg_cron''s ticks joined with the run ledger, and manual runs';

CREATE OR REPLACE VIEW gstjobs.job_overview AS
    SELECT j.name AS job,
           j.description,
           c.schedule,
           coalesce(c.active, false) AS active,
           c.jobid IS NOT NULL AS scheduled,
           j.local_time,
           last.status AS last_status,
           last.started_at AS last_started_at,
           last.duration AS last_duration,
           (SELECT count(*) FROM gstjobs.run_history AS h
            WHERE h.job = j.name AND h.status IN ('failed', 'crashed')
              AND h.started_at > now() - interval '24 hours') AS failures_24h
    FROM gstjobs.jobs AS j
    LEFT JOIN cron.job AS c ON c.jobname = j.name AND c.username = 'gstjobs_runner'
    LEFT JOIN LATERAL (
        SELECT h.status, h.started_at, h.duration FROM gstjobs.run_history AS h
        WHERE h.job = j.name AND NOT h.dry_run
        ORDER BY h.started_at DESC LIMIT 1) AS last ON true;
COMMENT ON VIEW gstjobs.job_overview IS 'one row per toolkit job: schedule, active, last run, failures in 24 h';

CREATE OR REPLACE VIEW gstjobs.outbox AS
    SELECT id, tenant_id, kind, channel, recipient, member_id, subject, body, status, attempts,
           next_attempt_at, last_error, provider_reply, dedupe_key, urgency, created_at, sent_at,
           run_id
    FROM gstjobs.notifications;
COMMENT ON VIEW gstjobs.outbox IS 'the notification outbox as operators see it';

CREATE OR REPLACE VIEW gstjobs.health AS
    SELECT id, created_at, healthy, problems, report, run_id
    FROM gstjobs.health_reports ORDER BY id DESC LIMIT 1;
COMMENT ON VIEW gstjobs.health IS 'the latest health report';

CREATE OR REPLACE VIEW gstjobs.firms AS
    SELECT t.id, t.name, t.timezone::text AS timezone, t.whatsapp_enabled, t.email_from,
           t.reply_to, t.created_at, t.disabled_at,
           (SELECT count(*) FROM litigation.members AS m WHERE m.tenant_id = t.id AND m.active)
               AS active_members,
           (SELECT count(*) FROM litigation.cases AS c WHERE c.tenant_id = t.id AND c.status = 'open')
               AS open_cases
    FROM litigation.tenants AS t;
COMMENT ON VIEW gstjobs.firms IS 'every firm: zone, delivery preferences, whether disabled, its size';

RESET ROLE;

GRANT SELECT ON gstjobs.run_history, gstjobs.job_overview, gstjobs.outbox, gstjobs.health
    TO gstjobs_operator;
-- operators and provisioners see the firms (no firm's data but its name and size)
GRANT SELECT ON gstjobs.firms TO gstjobs_operator, gstjobs_provisioner;

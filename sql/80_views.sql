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
           run_id,
           -- in a dispatcher's hands now (its status is still pending or failed until the
           -- provider answers): the dispatch run sending it
           claimed_by AS sending_run
    FROM gstjobs.notifications;
COMMENT ON VIEW gstjobs.outbox IS 'the notification outbox as operators see it';
COMMENT ON COLUMN gstjobs.outbox.sending_run IS
    'the dispatch run sending it now (claimed, no answer yet), else null';

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

-- The statutory side as operators read it (`gstjobs deadlines`, `events`, `calendar`): case
-- references, clients and dates, as the outbox already shows them; nothing of the members.
CREATE OR REPLACE VIEW gstjobs.deadline_list AS
    SELECT d.tenant_id, t.name AS firm, d.id, d.case_id, c.reference AS case_reference,
           cl.name AS client, d.kind AS deadline, d.rule_key AS rule, r.section, r.binds,
           d.event_id, e.kind AS event, e.event_on,
           -- the legal last day (a date a person set is its own last day)
           coalesce(d.statutory_on, d.due_on) AS last_day, d.due_on AS safe_date,
           d.condonable_until, d.status, d.origin,
           d.computation -> 'notified' ->> 'notification' AS notified_by,
           d.computation ->> 'summary' AS basis,
           (now() AT TIME ZONE t.timezone::text)::date AS firm_today
    FROM litigation.deadlines AS d
    JOIN litigation.tenants AS t ON t.id = d.tenant_id
    JOIN litigation.cases AS c ON c.tenant_id = d.tenant_id AND c.id = d.case_id
    JOIN litigation.clients AS cl ON cl.tenant_id = c.tenant_id AND cl.id = c.client_id
    LEFT JOIN gstjobs.deadline_rules AS r ON r.key = d.rule_key
    LEFT JOIN litigation.case_events AS e ON e.tenant_id = d.tenant_id AND e.id = d.event_id;
COMMENT ON VIEW gstjobs.deadline_list IS 'every deadline with its case, rule, event and dates, for operators';

CREATE OR REPLACE VIEW gstjobs.event_list AS
    SELECT e.tenant_id, e.id, e.case_id, c.reference AS case_reference, e.kind, k.label,
           e.event_on, e.financial_year, e.document_ref, e.notice_period_days,
           (SELECT count(*) FROM litigation.deadlines AS d
            WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id) AS deadlines,
           e.unresolved
    FROM litigation.case_events AS e
    JOIN litigation.cases AS c ON c.tenant_id = e.tenant_id AND c.id = e.case_id
    JOIN gstjobs.case_event_kinds AS k ON k.kind = e.kind;
COMMENT ON VIEW gstjobs.event_list IS 'every case event, with what it gave, for operators';

CREATE OR REPLACE VIEW gstjobs.calendar_list AS
    SELECT c.tenant_id, c.id AS calendar_id, c.name AS calendar, coalesce(c.forum, 'every forum') AS forum,
           c.closed_weekdays, h.holiday_on, h.name AS holiday
    FROM litigation.holiday_calendars AS c
    LEFT JOIN litigation.holidays AS h ON h.tenant_id = c.tenant_id AND h.calendar_id = c.id;
COMMENT ON VIEW gstjobs.calendar_list IS 'every firm''s calendars and their holidays, for operators';

CREATE OR REPLACE VIEW gstjobs.job_stats AS
    -- each job's finished runs of the last 7 days (not dry runs, not skipped ticks), through
    -- runs_job_started_idx: how often they succeed and how long they take
    SELECT j.name AS job,
           count(r.id) AS runs_7d,
           count(r.id) FILTER (WHERE r.status = 'succeeded') AS succeeded_7d,
           round(100.0 * count(r.id) FILTER (WHERE r.status = 'succeeded') / nullif(count(r.id), 0), 1)
               AS success_rate_7d,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
               AS p50_seconds_7d,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
               AS p95_seconds_7d
    FROM gstjobs.jobs AS j
    LEFT JOIN gstjobs.runs AS r
        ON r.job = j.name AND r.started_at > now() - interval '7 days'
       AND r.status NOT IN ('running', 'skipped') AND NOT r.dry_run
    GROUP BY j.name;
COMMENT ON VIEW gstjobs.job_stats IS 'per job, over 7 days: finished runs, share succeeded, median and 95th percentile duration';

-- ------------------------------------------------------------------ metrics --------------
-- What Prometheus reads (monitoring/queries.yaml, through Debian's prometheus-postgres-exporter,
-- as a login in gstjobs_monitor): a few rows each, through indexes (schedule_metrics apart, which
-- the exporter caches), so that a scrape every 15 seconds costs little at any size. Times are
-- seconds since the epoch; ages seconds.

CREATE OR REPLACE VIEW gstjobs.job_metrics AS
    SELECT j.name AS job,
           coalesce(c.active, false)::integer AS active,
           extract(epoch FROM ok.finished_at)::float8 AS last_success_timestamp_seconds,
           extract(epoch FROM last.finished_at - last.started_at)::float8 AS last_duration_seconds,
           run.running,
           coalesce(extract(epoch FROM clock_timestamp() - run.oldest), 0)::float8 AS running_seconds,
           -- cast once found (a scalar subquery): never another setting's text
           (SELECT coalesce(s.value, d.default_value)
            FROM gstjobs.setting_defaults AS d LEFT JOIN gstjobs.settings AS s ON s.key = d.key
            WHERE d.key = 'timeout.' || j.name)::integer AS timeout_seconds
    FROM gstjobs.jobs AS j
    LEFT JOIN cron.job AS c ON c.jobname = j.name AND c.username = 'gstjobs_runner'
    -- newest first through runs_job_started_idx, to the first that matches
    LEFT JOIN LATERAL (
        SELECT r.finished_at FROM gstjobs.runs AS r
        WHERE r.job = j.name AND r.status = 'succeeded' AND NOT r.dry_run
        ORDER BY r.started_at DESC LIMIT 1) AS ok ON true
    LEFT JOIN LATERAL (
        SELECT r.started_at, r.finished_at FROM gstjobs.runs AS r
        WHERE r.job = j.name AND r.status NOT IN ('running', 'skipped') AND NOT r.dry_run
        ORDER BY r.started_at DESC LIMIT 1) AS last ON true
    -- through runs_running_idx
    CROSS JOIN LATERAL (
        SELECT count(*) AS running, min(r.started_at) AS oldest FROM gstjobs.runs AS r
        WHERE r.job = j.name AND r.status = 'running') AS run;
COMMENT ON VIEW gstjobs.job_metrics IS 'per job: active, last success, last duration, runs running and for how long, timeout (Prometheus)';

CREATE OR REPLACE VIEW gstjobs.schedule_metrics AS
    -- each scheduled job's ticks in 24 h against its schedule: a read of a day of pg_cron's
    -- run history, which has no index but its key (monitoring/queries.yaml caches it 5 min)
    SELECT f.job, f.missed_ticks AS missed_ticks_24h, f.interval_seconds
    FROM gstjobs.schedule_facts() AS f;
COMMENT ON VIEW gstjobs.schedule_metrics IS 'per scheduled job: ticks missed in 24 h, mean time between ticks (Prometheus)';

CREATE OR REPLACE VIEW gstjobs.job_run_metrics AS
    SELECT j.name AS job, s.status, count(r.id) AS runs_24h
    FROM gstjobs.jobs AS j
    CROSS JOIN (VALUES ('succeeded'), ('failed'), ('crashed'), ('cancelled'), ('skipped')) AS s (status)
    LEFT JOIN gstjobs.runs AS r
        ON r.job = j.name AND r.status = s.status AND r.started_at > now() - interval '24 hours'
    GROUP BY j.name, s.status;
COMMENT ON VIEW gstjobs.job_run_metrics IS 'per job and outcome: runs in the last 24 h (Prometheus)';

CREATE OR REPLACE VIEW gstjobs.outbox_metrics AS
    SELECT ch.channel,
           -- through notifications_claim_idx (channel, ... WHERE pending or failed)
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.channel = ch.channel AND n.status = 'pending') AS pending,
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.channel = ch.channel AND n.status = 'failed') AS failed,
           -- through notifications_claimed_idx: in a dispatcher's hands now
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.claimed_by IS NOT NULL AND n.channel = ch.channel) AS sending,
           -- through notifications_dead_idx
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.status = 'dead' AND n.channel = ch.channel) AS dead,
           -- through notifications_sent_idx
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.status = 'sent' AND n.sent_at > now() - interval '24 hours'
              AND n.channel = ch.channel) AS sent_24h,
           -- through notifications_suppressed_idx: ended unsent by an opt-out
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.status = 'suppressed' AND n.suppressed_at > now() - interval '24 hours'
              AND n.channel = ch.channel) AS suppressed_24h,
           -- never tried and due later: held through quiet hours, or paused by a 429
           (SELECT count(*) FROM gstjobs.notifications AS n
            WHERE n.channel = ch.channel AND n.status = 'pending'
              AND n.next_attempt_at > now()) AS held,
           coalesce((SELECT extract(epoch FROM now() - min(n.next_attempt_at))
                     FROM gstjobs.notifications AS n
                     WHERE n.channel = ch.channel AND n.status IN ('pending', 'failed')
                       AND n.next_attempt_at <= now()), 0)::float8 AS oldest_due_seconds,
           -- the backlog threshold health-check reports by (setting health.backlog_minutes)
           60 * (SELECT coalesce(s.value, d.default_value)
                 FROM gstjobs.setting_defaults AS d LEFT JOIN gstjobs.settings AS s ON s.key = d.key
                 WHERE d.key = 'health.backlog_minutes')::integer AS backlog_after_seconds,
           -- when the provider last answered "too many requests" (HTTP 429), epoch seconds, 0:
           -- never; dispatch slows the channel for it, at most once a second (plpy/dispatch.py)
           coalesce((SELECT extract(epoch FROM r.slowed_at) FROM gstjobs.send_rates AS r
                     WHERE r.channel = ch.channel), 0)::float8 AS last_throttled_timestamp_seconds
    FROM (VALUES ('email'), ('whatsapp')) AS ch (channel);
COMMENT ON VIEW gstjobs.outbox_metrics IS 'per channel: notifications pending (of which held: due later), failed (to retry), sending, dead, sent and suppressed in 24 h, how long the oldest due one has waited, and when the provider last answered 429 (Prometheus)';

CREATE OR REPLACE VIEW gstjobs.slot_metrics AS
    -- each firm's latest slot of each local-time job in the last 24 h, when it was late or
    -- missed (a firm on time has no series: a thousand firms are a thousand series otherwise)
    SELECT s.job, s.tenant_id, s.status,
           extract(epoch FROM s.processed_at - s.due_at)::float8 AS lateness_seconds
    FROM (SELECT DISTINCT ON (sl.job, sl.tenant_id) sl.*
          FROM gstjobs.slots AS sl
          WHERE sl.due_at > now() - interval '24 hours'
          ORDER BY sl.job, sl.tenant_id, sl.local_date DESC) AS s
    WHERE s.status <> 'done';
COMMENT ON VIEW gstjobs.slot_metrics IS 'per local-time job and firm: how late its latest slot in 24 h was taken, when late or missed (Prometheus)';

RESET ROLE;

GRANT SELECT ON gstjobs.run_history, gstjobs.job_overview, gstjobs.job_stats, gstjobs.outbox,
                gstjobs.health,
                gstjobs.deadline_list, gstjobs.event_list, gstjobs.calendar_list
    TO gstjobs_operator;
-- operators and provisioners see the firms (no firm's data but its name and size)
GRANT SELECT ON gstjobs.firms TO gstjobs_operator, gstjobs_provisioner;
-- the metrics login reads the metric views, and nothing else of gstjobs; operators too
GRANT SELECT ON gstjobs.job_metrics, gstjobs.job_run_metrics, gstjobs.schedule_metrics,
                gstjobs.outbox_metrics, gstjobs.slot_metrics
    TO gstjobs_monitor, gstjobs_operator;

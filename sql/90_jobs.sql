-- The toolkit's jobs and their pg_cron schedules. Re-applied on every upgrade to head.
-- A job missing from pg_cron is scheduled with its default schedule, run as gstjobs_runner;
-- a job already scheduled keeps the schedule and active flag an operator may have set.

INSERT INTO gstjobs.jobs AS j (name, description, default_schedule, local_time, per_tenant, body)
VALUES
    ('heartbeat', 'proves pg_cron reaches the toolkit: one ledger row a minute',
     '* * * * *', NULL, false, 'gstjobs.job_heartbeat(bigint, timestamptz, bigint, boolean)'),
    ('sla-check', 'notifies newly overdue and SLA-breached tasks; escalates to managers',
     '* * * * *', NULL, false, 'gstjobs.job_sla_check(bigint, timestamptz, bigint, boolean)'),
    -- local-time jobs are polled every 15 minutes; each firm's slot happens once a local day
    ('hearing-reminders', 'reminds case owners of hearings 7, 1 and 0 days ahead, at 08:00 firm time',
     '*/15 * * * *', '08:00', true, 'gstjobs.job_hearing_reminders(bigint, timestamptz, bigint, boolean)'),
    ('deadline-alerts', 'alerts open deadlines 7, 3, 1 and 0 days ahead and overdue, at 09:00 firm time',
     '*/15 * * * *', '09:00', true, 'gstjobs.job_deadline_alerts(bigint, timestamptz, bigint, boolean)'),
    ('analytics-snapshot', 'one row of figures per firm per local day, with anomalies, at 23:45 firm time',
     '*/15 * * * *', '23:45', true, 'gstjobs.job_analytics_snapshot(bigint, timestamptz, bigint, boolean)'),
    ('dispatch-notifications', 'delivers the outbox by email (SMTP) and WhatsApp, with retries, at each channel''s rate',
     '* * * * *', NULL, false, 'gstjobs.job_dispatch_notifications(bigint, timestamptz, bigint, boolean)'),
    ('health-check', 'reports missed ticks, failures, stuck runs, slow runs, outbox backlog; 07:00 operations time',
     '*/15 * * * *', '07:00', false, 'gstjobs.job_health_check(bigint, timestamptz, bigint, boolean)'),
    -- 21:30 UTC is 03:00 in India: the quietest hour of the firms' day
    ('purge-history', 'deletes run history and sent notifications past retention, in bounded batches',
     '30 21 * * *', NULL, false, 'gstjobs.job_purge_history(bigint, timestamptz, bigint, boolean)')
ON CONFLICT (name) DO UPDATE
SET description = excluded.description, default_schedule = excluded.default_schedule,
    local_time = excluded.local_time, per_tenant = excluded.per_tenant, body = excluded.body;

DO $$
DECLARE
    job gstjobs.jobs;
    job_command text;
BEGIN
    FOR job IN SELECT * FROM gstjobs.jobs LOOP
        -- The command names the job and nothing else: no secret ever sits in cron.job.
        job_command := format('CALL gstjobs.run_job(%L)', job.name);
        IF EXISTS (SELECT FROM cron.job WHERE jobname = job.name AND username = 'gstjobs_runner') THEN
            UPDATE cron.job SET command = job_command, database = current_database()
            WHERE jobname = job.name AND username = 'gstjobs_runner'
              AND (cron.job.command, cron.job.database) IS DISTINCT FROM (job_command, current_database());
        ELSE
            PERFORM cron.schedule_in_database(job.name, job.default_schedule, job_command,
                                              current_database(), 'gstjobs_runner');
        END IF;
    END LOOP;
END
$$;

-- The jobs' bodies are granted to nobody: gstjobs.run_batch calls them as the owner, with the
-- run's own as_of, tenant and dry run from the ledger (docs/SECURITY.md).

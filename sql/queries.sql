-- Named queries of the operations layer (cli/gstjobs/ops.py), grouped by the command group
-- that uses them. Each block: `-- name: NAME`, a line saying what it returns, the statement.
-- Parameters are psycopg's %(name)s; every value is passed, never spliced. A test checks that
-- every query the code names is here and every query here is used.

-- ================================================================ jobs: list, history, run ===

-- name: job-overview
-- One row per toolkit job, in name order.
SELECT job, schedule, active, scheduled, local_time, last_status, last_started_at, last_duration,
       failures_24h
FROM gstjobs.job_overview
ORDER BY job;

-- name: known-job
-- The job, or an error (42704) whose hint lists the jobs.
SELECT (gstjobs.job(%(job)s)).name;

-- name: run-history
-- A job's runs, newest first, optionally of one status.
SELECT run_id, cron_runid, trigger, requested_by, status, started_at, duration, counts, error,
       tenant_id, as_of, dry_run, reason
FROM gstjobs.run_history
WHERE job = %(job)s AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY started_at DESC NULLS LAST, run_id DESC NULLS LAST
LIMIT %(limit)s;

-- name: run-job
-- Run a job by hand; returns its run_id.
CALL gstjobs.run_job(%(job)s, as_of => %(as_of)s, tenant_id => %(tenant_id)s,
                     dry_run => %(dry_run)s, reason => %(reason)s, wait => %(wait)s);

-- name: run-result
-- One run, as `gstjobs run` reports it.
SELECT job, run_id, status, counts, error, started_at, finished_at, duration
FROM gstjobs.run_history
WHERE run_id = %(run_id)s;

-- ================================================================ jobs: pause, resume ... ====

-- name: set-active
-- Pause (false) or resume (true) a job.
SELECT gstjobs.set_active(%(job)s, %(active)s, %(reason)s) AS result;

-- name: cancel-job
-- Cancel the running runs of a job.
SELECT gstjobs.cancel_job(%(job)s, %(reason)s) AS result;

-- name: runs-state
-- Where some runs are now (after a cancel): still running, or how they ended.
SELECT run_id, tenant_id, status, error, started_at, finished_at, duration
FROM gstjobs.run_history
WHERE run_id = ANY(%(run_ids)s)
ORDER BY run_id;

-- name: reschedule
-- Give a job a new cron schedule.
SELECT gstjobs.reschedule(%(job)s, %(schedule)s, %(reason)s) AS result;

-- ================================================================ health, doctor ============

-- name: health-latest
-- The latest health report.
SELECT id, created_at, healthy, problems, report FROM gstjobs.health;

-- name: adopt-installation
-- Confirm this database as the production one; admins only.
SELECT gstjobs.adopt_installation(%(reason)s) AS result;

-- name: doctor-facts
-- The server checks of `gstjobs doctor`.
SELECT name, ok, detail, fix FROM gstjobs.doctor_facts();

-- name: migration-version
-- The Alembic revision the database is at.
SELECT version_num FROM public.gstjobs_alembic_version;

-- name: installed-checksums
-- Checksums of the re-applied SQL files as installed.
SELECT name, checksum FROM gstjobs.schema_objects ORDER BY name;

-- ================================================================ outbox ====================

-- name: outbox-list
-- Notifications, newest first, filtered.
SELECT id, tenant_id, kind, channel, recipient, member_id, subject, body, status, attempts,
       next_attempt_at, last_error, provider_reply, dedupe_key, urgency, created_at, sent_at,
       run_id, sending_run
FROM gstjobs.outbox
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(tenant_id)s::bigint IS NULL OR tenant_id = %(tenant_id)s)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: outbox-show
-- One notification.
SELECT * FROM gstjobs.outbox WHERE id = %(id)s;

-- name: outbox-retry
-- Re-queue a dead or failed notification.
SELECT gstjobs.retry_notification(%(id)s, %(reason)s) AS result;

-- ================================================================ config ====================

-- name: config-list
-- Every setting, secrets masked.
SELECT key, value, default_value, is_set, description, updated_at, updated_by
FROM gstjobs.configuration ORDER BY key;

-- name: known-setting
-- The setting, or an error (42704) whose hint lists the settings.
SELECT (gstjobs.setting_definition(%(key)s)).key;

-- name: config-get
-- One setting, secrets masked.
SELECT key, value, default_value, kind, is_set, description, updated_at, updated_by, minimum,
       maximum, changed_by, problem
FROM gstjobs.configuration WHERE key = %(key)s;

-- name: config-set
-- Change settings together ({key: value}); one result per key.
SELECT gstjobs.set_settings(%(changes)s, %(reason)s) AS result;

-- ================================================================ firm ======================

-- name: firm-list
-- Every firm, by id.
SELECT id, name, timezone, whatsapp_enabled, email_from, reply_to, created_at, disabled_at,
       active_members, open_cases
FROM gstjobs.firms ORDER BY id;

-- name: firm-add
-- A new firm; returns its id.
SELECT gstjobs.add_firm(%(name)s, %(timezone)s, %(whatsapp_enabled)s, %(email_from)s,
                        %(reply_to)s, %(reason)s) AS result;

-- name: firm-set-disabled
-- Disable (true) or enable (false) a firm.
SELECT gstjobs.set_firm_disabled(%(id)s, %(disabled)s, %(reason)s) AS result;

-- ================================================================ shared ====================

-- name: ops-timezone
-- The operations zone, the default for displaying times.
SELECT gstjobs.display_timezone() AS value;

-- ================================================================ deadlines, events, rules, calendar

-- name: deadline-list
-- Deadlines, soonest safe date first: open ones (or all), of a firm or case, due within days.
SELECT tenant_id, firm, id, case_reference, client, deadline, rule, section, binds, event,
       event_on, last_day, safe_date, condonable_until, status, origin, notified_by, basis
FROM gstjobs.deadline_list
WHERE (%(tenant_id)s::bigint IS NULL OR tenant_id = %(tenant_id)s)
  AND (%(case_id)s::bigint IS NULL OR case_id = %(case_id)s)
  AND (%(include_closed)s OR status = 'open')
  AND (%(due_within)s::integer IS NULL OR safe_date <= firm_today + %(due_within)s::integer)
ORDER BY safe_date, tenant_id, id
LIMIT %(limit)s;

-- name: event-list
-- A firm's events (of one case), newest first, with how many deadlines each gave.
SELECT id, case_id, case_reference, kind, event_on, financial_year, document_ref,
       notice_period_days, deadlines, unresolved
FROM gstjobs.event_list
WHERE tenant_id = %(tenant_id)s AND (%(case_id)s::bigint IS NULL OR case_id = %(case_id)s)
ORDER BY event_on DESC, id DESC
LIMIT %(limit)s;

-- name: event-add
-- Record an event on a firm's case; the event and its deadlines.
SELECT gstjobs.record_event(%(tenant_id)s, %(case_id)s, %(kind)s, %(event_on)s, %(document_ref)s,
                            %(notice_period_days)s, %(financial_year)s, %(reason)s) AS result;

-- name: event-correct
-- Correct an event's fields; the event and its deadlines.
SELECT gstjobs.correct_event(%(tenant_id)s, %(event_id)s, %(changes)s, %(reason)s) AS result;

-- name: event-remove
-- Remove an event recorded in error.
SELECT gstjobs.remove_event(%(tenant_id)s, %(event_id)s, %(reason)s) AS result;

-- name: rule-list
-- Every statutory rule, with how many notified dates it has in force.
SELECT r.key, r.name, r.section, r.trigger_event, r.counted_from, r.period, r.unit,
       r.extension, r.extension_unit, r.binds, r.forum, r.active, r.verified_on,
       (SELECT count(*) FROM gstjobs.notified_dates AS n WHERE n.rule_key = r.key AND n.active)
           AS notified_dates
FROM gstjobs.deadline_rules AS r
ORDER BY r.key;

-- name: rule-show
-- One rule, every field.
SELECT to_jsonb(r) AS rule FROM gstjobs.deadline_rules AS r WHERE r.key = %(key)s;

-- name: rule-notified-dates
-- A rule's notified dates, oldest first, retired ones too.
SELECT id, notification, notified_on, section, for_events_from, for_events_before,
       financial_year, last_day, active, verified_on, source, operative_words
FROM gstjobs.notified_dates
WHERE rule_key = %(key)s
ORDER BY notified_on, id;

-- name: notified-date-define
-- Add (no id) or change a notified date; what it became and how many deadlines moved.
SELECT gstjobs.define_notified_date(%(notified)s, %(reason)s) AS result;

-- name: calendar-list
-- A firm's calendars and their holidays, by forum and date.
SELECT calendar_id, calendar, forum, closed_weekdays, holiday_on, holiday
FROM gstjobs.calendar_list
WHERE tenant_id = %(tenant_id)s
ORDER BY forum, holiday_on NULLS FIRST;

-- name: holidays-add
-- Add holidays to a firm's calendar for a forum (made if missing).
SELECT gstjobs.add_holidays(%(tenant_id)s, %(forum)s, %(holidays)s, %(reason)s) AS result;

-- name: holidays-remove
-- Remove holidays from a firm's calendar for a forum.
SELECT gstjobs.remove_holidays(%(tenant_id)s, %(forum)s, %(days)s, %(reason)s) AS result;

-- name: closed-weekdays-set
-- Set the weekdays a firm's forum is closed.
SELECT gstjobs.set_closed_weekdays(%(tenant_id)s, %(forum)s, %(weekdays)s::smallint[], %(reason)s) AS result;

-- name: prefs-show
-- The choices that apply to a firm (member NULL) or one of its members, per kind.
SELECT kind, email, whatsapp, email_instead, through_quiet_hours, digest, chosen_by,
       to_char(quiet_from, 'HH24:MI') || '-' || to_char(quiet_until, 'HH24:MI') AS quiet_hours,
       quiet_hours_by, to_char(digest_at, 'HH24:MI') AS digest_at,
       array_to_string(digest_days, ',') AS digest_days,
       member, role, active, has_email, whatsapp_reaches
FROM gstjobs.notification_choices
WHERE tenant_id = %(tenant_id)s AND member_id IS NOT DISTINCT FROM %(member_id)s
ORDER BY kind;

-- name: prefs-choice-set
-- Set (NULL: remove) a firm's or a member's choice of channels for a kind.
SELECT gstjobs.set_notification_choice(%(tenant_id)s, %(member_id)s, %(kind)s, %(choice)s, %(reason)s) AS result;

-- name: prefs-quiet-set
-- Set a firm's or a member's quiet hours (a member's NULL, NULL: the firm's again).
SELECT gstjobs.set_quiet_hours(%(tenant_id)s, %(member_id)s, %(quiet_from)s, %(quiet_until)s, %(reason)s) AS result;

-- name: prefs-digest-set
-- Set a firm's or a member's digest time and/or days (a member's null: the firm's again).
SELECT gstjobs.set_digest_time(%(tenant_id)s, %(member_id)s, %(times)s, %(reason)s) AS result;

-- name: notification-kinds
-- The kinds of notification a member may choose channels for.
SELECT kind, about, gstjobs.goes_by_whatsapp(kind) AS by_whatsapp
FROM gstjobs.notification_kinds ORDER BY kind;

-- ================================================================ dashboard =================

-- name: dashboard-login
-- Who the dashboard is connected as, and whether that login may operate gstjobs.
SELECT current_user AS login, current_database() AS database,
       pg_has_role(current_user, 'gstjobs_operator', 'USAGE') AS operator;

-- name: job-stats
-- Each job's runs over 7 days: success rate, median and 95th percentile duration.
SELECT job, runs_7d, succeeded_7d, success_rate_7d, p50_seconds_7d, p95_seconds_7d
FROM gstjobs.job_stats ORDER BY job;

-- name: running-runs
-- The runs under way now, by job.
SELECT job, count(*) AS running FROM gstjobs.run_history WHERE status = 'running' GROUP BY job;

-- name: outbox-by-channel
-- The outbox per channel: how many wait, are in flight, are dead; the oldest due one's age.
SELECT channel, pending, failed, sending, dead, sent_24h, oldest_due_seconds,
       backlog_after_seconds
FROM gstjobs.outbox_metrics ORDER BY channel;


"""purge-history: drop what is past its retention, a bounded batch per statement.

Run history (the ledger and pg_cron's rows of the toolkit's jobs), sent notifications, old
slots and health reports go after retention.run_history_days / retention.notifications_days;
the audit log after retention.audit_days (years); a digest's items as they get as old. A
notification that is not sent (or gathered into a digest) is never purged, whatever its age.
The body returns {"more": true} while a batch came back full, and
the runner commits between calls, so no transaction grows with the backlog.
"""

# The server compiles plpy/common.py into this module's namespace (cli/gstjobs/resources.py):
# these names come from there. Never run, so nothing is imported in a new session.
if False:
    from common import enter_run, one

PURGE = """
WITH limits AS (
    SELECT $2 - gstjobs.setting('retention.run_history_days')::integer * interval '1 day' AS history,
           $2 - gstjobs.setting('retention.notifications_days')::integer * interval '1 day' AS sent,
           $2 - gstjobs.setting('retention.audit_days')::integer * interval '1 day' AS audit,
           gstjobs.setting('purge.batch_size')::integer AS batch
),
runs AS (
    DELETE FROM gstjobs.runs WHERE id IN (
        SELECT r.id FROM gstjobs.runs AS r, limits
        WHERE r.status <> 'running' AND r.started_at < limits.history LIMIT (SELECT batch FROM limits))
    RETURNING 1
),
cron_runs AS (
    DELETE FROM cron.job_run_details WHERE runid IN (
        SELECT d.runid FROM cron.job_run_details AS d
        JOIN cron.job AS c ON c.jobid = d.jobid AND c.username = 'gstjobs_runner'
        JOIN gstjobs.jobs AS j ON j.name = c.jobname
        CROSS JOIN limits
        WHERE d.start_time < limits.history AND d.status NOT IN ('starting', 'running')
        LIMIT (SELECT batch FROM limits))
    RETURNING 1
),
notifications AS (
    DELETE FROM gstjobs.notifications WHERE id IN (
        SELECT n.id FROM gstjobs.notifications AS n, limits
        WHERE n.status = 'sent' AND n.sent_at < limits.sent LIMIT (SELECT batch FROM limits))
    RETURNING 1
),
-- a digest's items, as old: what they said is in the digest email (notifications_digested_idx)
digested AS (
    DELETE FROM gstjobs.notifications WHERE id IN (
        SELECT n.id FROM gstjobs.notifications AS n, limits
        WHERE n.status = 'digested' AND n.created_at < limits.sent
        LIMIT (SELECT batch FROM limits))
    RETURNING 1
),
slots AS (
    DELETE FROM gstjobs.slots WHERE (job, tenant_id, local_date) IN (
        SELECT s.job, s.tenant_id, s.local_date FROM gstjobs.slots AS s, limits
        WHERE s.processed_at < limits.history LIMIT (SELECT batch FROM limits))
    RETURNING 1
),
reports AS (
    DELETE FROM gstjobs.health_reports WHERE id IN (
        SELECT h.id FROM gstjobs.health_reports AS h, limits
        WHERE h.created_at < limits.history LIMIT (SELECT batch FROM limits))
    RETURNING 1
),
audit AS (
    DELETE FROM gstjobs.audit_log WHERE id IN (
        SELECT a.id FROM gstjobs.audit_log AS a, limits
        WHERE a.at < limits.audit LIMIT (SELECT batch FROM limits))
    RETURNING 1
)
SELECT (SELECT count(*) FROM runs) AS runs,
       (SELECT count(*) FROM cron_runs) AS cron_runs,
       (SELECT count(*) FROM notifications) AS notifications,
       (SELECT count(*) FROM digested) AS digest_items,
       (SELECT count(*) FROM slots) AS slots,
       (SELECT count(*) FROM reports) AS health_reports,
       (SELECT count(*) FROM audit) AS audit_log,
       (SELECT batch FROM limits) AS batch
"""


def purge_history(run_id, as_of, tenant_id, dry_run):
    enter_run(run_id, "purge-history")
    row = dict(one("purge", PURGE, ["bigint", "timestamptz"], [run_id, as_of]))
    batch = row.pop("batch")
    row["more"] = any(count >= batch for count in row.values())
    return row

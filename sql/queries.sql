-- Named queries of the CLI. Each block: `-- name: NAME`, a line saying what it returns, the
-- statement.

-- name: job-overview
-- One row per toolkit job, in name order.
SELECT job, schedule, active, local_time, last_status, last_started_at, last_duration, failures_24h
FROM gstjobs.job_overview
ORDER BY job;

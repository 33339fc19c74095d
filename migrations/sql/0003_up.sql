-- dispatch claims the most urgent due message of a channel: ORDER BY urgency, next_attempt_at,
-- id. The baseline's index stopped at next_attempt_at, and every message one run writes shares
-- that run's now(), so each claim read and sorted all of them: 10,000 messages queued by one
-- run cost a sort of up to 10,000 rows per message sent (docs/BENCHMARKS.md). With the
-- channel first and the id last, a claim reads the rows it takes, whatever the other channel
-- holds back (a WhatsApp outage leaves its messages pending ahead of the emails).
CREATE INDEX notifications_claim_idx
    ON gstjobs.notifications (channel, urgency, next_attempt_at, id)
    WHERE status IN ('pending', 'failed');
DROP INDEX gstjobs.notifications_due_idx;

-- Escalations go to the firm's partners: sla-check (a task whose assignee has no manager) and
-- deadline-alerts (every overdue deadline) find them by this index instead of reading all the
-- firm's members for each task or deadline.
CREATE INDEX members_partners_idx ON litigation.members (tenant_id) WHERE role = 'partner';

-- A run's rows point at it with ON DELETE SET NULL. Without these indexes purge-history's
-- deletion of each old run read all of every table below: 5,000 runs past retention beside
-- 300,000 notifications and 300,000 slots took 8 minutes (docs/BENCHMARKS.md). Rows whose run
-- is gone (run_id NULL) leave the indexes.
CREATE INDEX notifications_run_idx ON gstjobs.notifications (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX slots_run_idx ON gstjobs.slots (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX analytics_snapshots_run_idx ON gstjobs.analytics_snapshots (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX health_reports_run_idx ON gstjobs.health_reports (run_id) WHERE run_id IS NOT NULL;

-- Dead letters: health-check counts them every day and `gstjobs outbox --status dead` lists
-- them newest first, without reading the sent notifications around them.
CREATE INDEX notifications_dead_idx ON gstjobs.notifications (id) WHERE status = 'dead';

-- The jobs' bodies return their counts as jsonb through PL/Python's jsonb transform instead of
-- the json module, whose import (with re) cost every run's new session ~6 ms. Recorded like
-- pg_cron and plpython3u, so that downgrade drops it only if gstjobs created it.
CREATE TEMPORARY TABLE gstjobs_preexisting_extensions AS
    SELECT extname FROM pg_extension WHERE extname = 'jsonb_plpython3u';
CREATE EXTENSION IF NOT EXISTS jsonb_plpython3u;
INSERT INTO gstjobs.installed_extensions (name)
    SELECT 'jsonb_plpython3u' WHERE NOT EXISTS (SELECT FROM gstjobs_preexisting_extensions);
DROP TABLE gstjobs_preexisting_extensions;

-- health-check's daily look for missed slots (status 'missed' in its window) read every slot
-- kept: a row per firm, slot job and day, 90 days of them, ~2.7 million rows at 10,000 firms,
-- for a status that is almost never there. A partial index holds only the missed ones. Built
-- in the upgrade's transaction: it holds off the jobs' slot writes for as long as reading
-- gstjobs.slots once takes (seconds at that size).
SET ROLE gstjobs_owner;

CREATE INDEX slots_missed_idx ON gstjobs.slots (due_at) WHERE status = 'missed';

RESET ROLE;

-- Local-time slots: where each firm's (or the operations zone's) slot of a local-time job is,
-- and which have come due. Re-applied on every upgrade to head.

SET ROLE gstjobs_owner;

CREATE OR REPLACE FUNCTION gstjobs.due_slots(job text, as_of timestamptz, only_tenant bigint)
    RETURNS TABLE (job text, tenant_id bigint, zone text, local_date date, due_at timestamptz,
                   status text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- Where each slot is: every firm in its own zone, or (tenant 0) the operations zone.
    WITH registered AS (
        SELECT j.name, j.local_time, j.per_tenant FROM gstjobs.jobs AS j WHERE j.name = due_slots.job
    ),
    places AS (
        SELECT t.id AS tenant_id, t.timezone::text AS zone
        FROM litigation.tenants AS t, registered AS r
        -- a disabled firm's slots do not come (gstjobs firm disable)
        WHERE r.per_tenant AND (only_tenant IS NULL OR t.id = only_tenant) AND t.disabled_at IS NULL
        UNION ALL
        SELECT 0, gstjobs.setting('ops.timezone') FROM registered AS r WHERE NOT r.per_tenant
    ),
    candidates AS (
        -- the local dates of the last week whose slot time has come
        SELECT p.tenant_id, p.zone, d.local_date,
               (d.local_date + r.local_time) AT TIME ZONE p.zone AS due_at,
               (SELECT max(s.local_date) FROM gstjobs.slots AS s
                WHERE s.job = r.name AND s.tenant_id = p.tenant_id) AS last_taken
        FROM places AS p
        CROSS JOIN registered AS r
        CROSS JOIN LATERAL (
            SELECT g::date AS local_date
            FROM generate_series((as_of AT TIME ZONE p.zone)::date - 7,
                                 (as_of AT TIME ZONE p.zone)::date, interval '1 day') AS g
        ) AS d
        WHERE (d.local_date + r.local_time) AT TIME ZONE p.zone <= as_of
    ),
    due AS (
        SELECT c.*, max(c.local_date) OVER (PARTITION BY c.tenant_id) AS latest
        FROM candidates AS c
    )
    SELECT due_slots.job, due.tenant_id, due.zone, due.local_date, due.due_at,
           CASE WHEN as_of - due.due_at > gstjobs.setting('slots.catchup_hours')::integer * interval '1 hour'
                THEN 'missed'
                WHEN as_of - due.due_at > gstjobs.setting('slots.late_after_minutes')::integer * interval '1 minute'
                THEN 'late'
                ELSE 'done' END
    FROM due
    -- after the last slot taken; a place with none yet (a new firm, a new install) starts at
    -- its latest slot if that is within the catch-up limit, so that nothing is reported
    -- missed that gstjobs was never there to run
    WHERE due.local_date > coalesce(due.last_taken, due.latest - 1)
      AND (due.last_taken IS NOT NULL
           OR as_of - due.due_at <= gstjobs.setting('slots.catchup_hours')::integer * interval '1 hour')
    ORDER BY due.tenant_id, due.local_date;
END;
COMMENT ON FUNCTION gstjobs.due_slots(text, timestamptz, bigint) IS
    'the local-time slots of a job that have come due by as_of and are not taken yet, with the status they would get';

RESET ROLE;

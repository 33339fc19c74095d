"""The local-time jobs: hearing-reminders, deadline-alerts and analytics-snapshot.

pg_cron here knows neither time zones nor catch-up, so it polls these jobs; each run takes the
slots that have come due, one per (job, firm, local date), in gstjobs.slots, whose primary key
makes each happen exactly once. A slot found late is run and marked late; one older than the
catch-up limit is recorded as missed and not run (health-check reports it). Everything a run
does is one statement per job: the slots it takes and the work for them go together.
"""

# The server compiles plpy/common.py into this module's namespace (cli/gstjobs/resources.py):
# these names come from there. Never run, so nothing is imported in a new session.
if False:
    from common import EMAIL_PART, NOTIFY, enter_run, for_every_firm, plan

# $1 run_id, $2 as_of, $3 tenant_id (NULL: every firm), $4 and $5 the range of firm ids it
# covers (every firm, unless a failure is being narrowed down to its firm:
# common.for_every_firm); the slots taken by this run.
TAKE_SLOTS = """
taken AS (
    INSERT INTO gstjobs.slots AS s (job, tenant_id, local_date, status, due_at, run_id)
    SELECT due.job, due.tenant_id, due.local_date, due.status, due.due_at, $1
    FROM gstjobs.due_slots('{job}', $2, $3) AS due
    WHERE due.tenant_id BETWEEN $4 AND $5
    ON CONFLICT DO NOTHING
    RETURNING s.tenant_id, s.local_date, s.status, s.due_at
),
work AS (
    SELECT taken.tenant_id, taken.local_date, taken.due_at, firm.timezone AS zone,
           firm.name AS firm, firm.whatsapp_enabled,
           -- the firm's date when the message goes: what "today" and "tomorrow" mean in it,
           -- whichever day's slot this is (a catch-up after downtime runs yesterday's)
           ($2 AT TIME ZONE firm.timezone)::date AS today,
           -- a slot run late says so, where the timing matters
           CASE WHEN taken.status = 'late'
                THEN format(E'\\n\\n(This message was due at %s and is sent late, at %s, after a delay.)',
                            gstjobs.format_local(taken.due_at, firm.timezone),
                            gstjobs.format_local($2, firm.timezone))
                ELSE '' END AS late
    FROM taken JOIN litigation.tenants AS firm ON firm.id = taken.tenant_id
    WHERE taken.status <> 'missed'
)"""

SLOT_COUNTS = """
    (SELECT count(*) FROM taken WHERE status <> 'missed') AS slots,
    (SELECT count(*) FROM taken WHERE status = 'late') AS late,
    (SELECT count(*) FROM taken WHERE status = 'missed') AS missed"""

WHEN = (
    "CASE WHEN {days} = 0 THEN 'today' WHEN {days} = 1 THEN 'tomorrow'"
    " WHEN {days} = -1 THEN 'yesterday' WHEN {days} < 0 THEN -{days} || ' days ago'"
    " ELSE 'in ' || {days} || ' days' END"
)

HEARING_REMINDERS = f"""
WITH {TAKE_SLOTS.format(job="hearing-reminders")},
hearings AS (
    SELECT w.*, h.id AS hearing_id, h.starts_at, h.forum, h.venue, c.reference, c.section,
           c.owner_id, cl.name AS client,
           (h.starts_at AT TIME ZONE w.zone)::date - w.local_date AS days_ahead,
           -- counted from the day the message goes: a slot caught up the next day reminds
           -- with that day's count, and its key is the one that day's own slot would use
           (h.starts_at AT TIME ZONE w.zone)::date - w.today AS days_left
    FROM work AS w
    JOIN litigation.hearings AS h
      ON h.tenant_id = w.tenant_id AND h.status = 'scheduled'
     AND h.starts_at >= w.local_date::timestamp AT TIME ZONE w.zone
     AND h.starts_at < (w.local_date + 8)::timestamp AT TIME ZONE w.zone
    JOIN litigation.cases AS c ON c.tenant_id = h.tenant_id AND c.id = h.case_id
    JOIN litigation.clients AS cl ON cl.tenant_id = c.tenant_id AND cl.id = c.client_id
    WHERE (h.starts_at AT TIME ZONE w.zone)::date - w.local_date IN (7, 1, 0)
),
past AS (
    -- hearings of the last week still marked scheduled: nobody recorded what happened
    SELECT count(*) AS n
    FROM work AS w
    JOIN litigation.hearings AS h
      ON h.tenant_id = w.tenant_id AND h.status = 'scheduled'
     AND h.starts_at >= (w.local_date - 7)::timestamp AT TIME ZONE w.zone
     AND h.starts_at < w.local_date::timestamp AT TIME ZONE w.zone
),
targets AS (
    SELECT h.tenant_id, h.owner_id AS member_id, 'hearing-reminder' AS kind,
           -- the hearing's local date is in the key: a hearing moved to a new date is reminded again
           format('hearing-reminder:%s:%s:%s:T-%s', h.tenant_id, h.hearing_id,
                  (h.starts_at AT TIME ZONE h.zone)::date, h.days_left) AS dedupe,
           CASE h.days_left WHEN 0 THEN 0 WHEN 1 THEN 1 ELSE 5 END AS urgency,
           jsonb_build_object(
               'firm', h.firm,
               'when', {WHEN.format(days="h.days_left")},
               'hearing_local', gstjobs.format_local(h.starts_at, h.zone),
               'case_reference', h.reference, 'section', h.section, 'client', h.client,
               'forum', h.forum, 'venue', coalesce(h.venue, 'venue not recorded'),
               'late', h.late) AS vars
    FROM hearings AS h
    -- a slot run late (a catch-up, a hearing early in the morning): no reminder of a hearing
    -- already under way
    WHERE h.starts_at > $2
),
{NOTIFY}
SELECT {SLOT_COUNTS},
    (SELECT count(*) FROM hearings) AS found,
    (SELECT count(*) FROM hearings WHERE starts_at <= $2) AS already_begun,
    (SELECT n FROM past) AS past_still_scheduled,
    (SELECT count(*) FROM inserted) AS notified,
    (SELECT count(DISTINCT dedupe) FROM targets) - (SELECT count(DISTINCT dedupe) FROM messages)
        AS skipped
"""

# A deadline computed from a case event says which rule, section and dates it comes from
# (sql/60_deadlines.sql); one a person set by hand says nothing more.
BASIS = """CASE d.origin
    WHEN 'computed' THEN E'\\n\\n' || (d.computation ->> 'summary')
    WHEN 'overridden' THEN E'\\n\\nDate set by hand; the rule gave: ' || (d.computation ->> 'summary')
    ELSE '' END"""

DEADLINE_ALERTS = f"""
WITH {TAKE_SLOTS.format(job="deadline-alerts")},
upcoming AS (
    SELECT w.*, d.id AS deadline_id, d.kind AS deadline, d.due_on, d.owner_id,
           d.due_on - w.local_date AS days_ahead, d.due_on - w.today AS days_left,
           c.reference, c.section, cl.name AS client,
           {BASIS} AS basis
    FROM work AS w
    JOIN litigation.deadlines AS d
      ON d.tenant_id = w.tenant_id AND d.status = 'open'
     AND d.due_on BETWEEN w.local_date AND w.local_date + 7
    JOIN litigation.cases AS c ON c.tenant_id = d.tenant_id AND c.id = d.case_id
    JOIN litigation.clients AS cl ON cl.tenant_id = c.tenant_id AND cl.id = c.client_id
    WHERE d.due_on - w.local_date IN (7, 3, 1, 0)
),
overdue AS (
    -- alerted once per due date: the record is kept on the deadline itself
    UPDATE litigation.deadlines AS d
    SET overdue_alerted_at = $2
    FROM work AS w
    WHERE d.tenant_id = w.tenant_id AND d.status = 'open' AND d.overdue_alerted_at IS NULL
      AND d.due_on < w.local_date
    RETURNING d.tenant_id, d.id AS deadline_id, d.kind AS deadline, d.due_on, d.owner_id,
              d.case_id, w.zone, w.firm, w.late, {BASIS} AS basis,
              -- the department's own limit passed: a time bar for the firm to use, not a
              -- deadline it missed
              EXISTS (SELECT FROM gstjobs.deadline_rules AS r
                      WHERE r.key = d.rule_key AND r.binds = 'department') AS time_bar
),
ahead_lines AS (
    -- the weekly summary, in Monday's slot: each member's open deadlines due in the next 14
    -- days, a line each by due date; a partner's: the firm's
    SELECT w.tenant_id, r.member_id, w.local_date, w.firm, w.late, d.due_on, c.reference,
           d.id AS deadline_id,
           format('  %s  %s: %s (%s, section %s)%s', to_char(d.due_on, 'Dy DD Mon'),
                  d.kind, c.reference, cl.name, c.section, ', owner ' || owner.name) AS line
    FROM work AS w
    JOIN litigation.deadlines AS d
      ON d.tenant_id = w.tenant_id AND d.status = 'open'
     AND d.due_on BETWEEN w.local_date AND w.local_date + 13
    JOIN litigation.cases AS c ON c.tenant_id = d.tenant_id AND c.id = d.case_id
    JOIN litigation.clients AS cl ON cl.tenant_id = c.tenant_id AND cl.id = c.client_id
    LEFT JOIN litigation.members AS owner ON owner.tenant_id = d.tenant_id AND owner.id = d.owner_id
    CROSS JOIN LATERAL (
        SELECT d.owner_id
        UNION
        SELECT p.id FROM litigation.members AS p
        WHERE p.tenant_id = d.tenant_id AND p.role = 'partner'
    ) AS r (member_id)
    WHERE extract(isodow FROM w.local_date) = 1 AND r.member_id IS NOT NULL
),
ahead_parted AS (
    -- a list too long for one email (a partner of a large firm) goes in parts of at most
    -- EMAIL_PART characters, each line whole in one part, never cut
    SELECT l.*, count(*) OVER member AS deadlines,
           (sum(length(l.line) + 1) OVER (member ORDER BY l.due_on, l.reference, l.deadline_id)
            - length(l.line) - 1) / {EMAIL_PART} AS bucket
    FROM ahead_lines AS l
    WINDOW member AS (PARTITION BY l.tenant_id, l.member_id)
),
ahead AS (
    SELECT a.tenant_id, a.member_id, a.local_date, a.firm, a.late, max(a.deadlines) AS deadlines,
           string_agg(a.line, chr(10) ORDER BY a.due_on, a.reference, a.deadline_id) AS list,
           row_number() OVER member AS part, count(*) OVER member AS parts
    FROM ahead_parted AS a
    GROUP BY a.tenant_id, a.member_id, a.local_date, a.firm, a.late, a.bucket
    WINDOW member AS (PARTITION BY a.tenant_id, a.member_id ORDER BY a.bucket
                      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
targets AS (
    SELECT u.tenant_id, u.owner_id AS member_id, 'deadline-alert' AS kind,
           format('deadline-alert:%s:%s:%s:T-%s', u.tenant_id, u.deadline_id, u.due_on,
                  u.days_left) AS dedupe,
           CASE u.days_left WHEN 0 THEN 0 WHEN 1 THEN 1 WHEN 3 THEN 3 ELSE 5 END AS urgency,
           jsonb_build_object('firm', u.firm, 'when', {WHEN.format(days="u.days_left")},
               'deadline', u.deadline, 'due_local', to_char(u.due_on, 'Dy DD Mon YYYY'),
               'case_reference', u.reference, 'section', u.section, 'client', u.client,
               'basis', u.basis, 'late', u.late) AS vars
    FROM upcoming AS u
    -- a slot caught up after its deadline's day: the overdue alert of today's slot says it
    WHERE u.days_left >= 0
    UNION ALL
    -- the owner, and the firm's partners (the escalation); a time bar: the owner
    SELECT o.tenant_id, m.id, o.kind, format('%s:%s:%s:%s', o.kind, o.tenant_id, o.deadline_id, o.due_on),
           CASE WHEN o.time_bar THEN 3 ELSE 0 END,
           jsonb_build_object('firm', o.firm, 'deadline', o.deadline,
               'due_local', to_char(o.due_on, 'Dy DD Mon YYYY'),
               'case_reference', c.reference, 'section', c.section, 'client', cl.name,
               'owner', coalesce(owner.name, 'nobody'), 'basis', o.basis, 'late', o.late)
    FROM (SELECT *, CASE WHEN time_bar THEN 'deadline-time-bar' ELSE 'deadline-overdue' END AS kind
          FROM overdue) AS o
    JOIN litigation.cases AS c ON c.tenant_id = o.tenant_id AND c.id = o.case_id
    JOIN litigation.clients AS cl ON cl.tenant_id = c.tenant_id AND cl.id = c.client_id
    LEFT JOIN litigation.members AS owner ON owner.tenant_id = o.tenant_id AND owner.id = o.owner_id
    -- each by its key (members_pkey, members_partners_idx), not a scan of the firm's members
    -- for every deadline
    CROSS JOIN LATERAL (
        SELECT o.owner_id
        UNION
        SELECT p.id FROM litigation.members AS p
        WHERE p.tenant_id = o.tenant_id AND p.role = 'partner' AND NOT o.time_bar
    ) AS r (id)
    JOIN litigation.members AS m ON m.tenant_id = o.tenant_id AND m.id = r.id AND m.active
    UNION ALL
    -- the first part's key is the one a summary in one part has
    SELECT a.tenant_id, a.member_id, 'deadlines-ahead',
           format('deadlines-ahead:%s:%s', a.tenant_id, a.local_date)
               || CASE WHEN a.part > 1 THEN ':part-' || a.part ELSE '' END, 5,
           jsonb_build_object('firm', a.firm, 'count', a.deadlines, 'list', a.list, 'late', a.late,
               'part', CASE WHEN a.parts > 1 THEN format(' (part %s of %s)', a.part, a.parts)
                            ELSE '' END,
               'whose', CASE WHEN m.role = 'partner' THEN 'The firm''s' ELSE 'Your' END,
               'from_local', to_char(a.local_date, 'Dy DD Mon YYYY'),
               'until_local', to_char(a.local_date + 13, 'Dy DD Mon YYYY'))
    FROM ahead AS a
    JOIN litigation.members AS m ON m.tenant_id = a.tenant_id AND m.id = a.member_id
),
{NOTIFY}
SELECT {SLOT_COUNTS},
    (SELECT count(*) FROM upcoming) AS found,
    (SELECT count(*) FROM overdue) AS overdue,
    (SELECT count(*) FROM ahead WHERE part = 1) AS summaries,
    (SELECT count(*) FROM ahead) AS summary_parts,
    (SELECT count(*) FROM inserted) AS notified,
    (SELECT count(DISTINCT dedupe) FROM targets) - (SELECT count(DISTINCT dedupe) FROM messages)
        AS skipped
"""


METRICS = (
    "demand_in_dispute",
    "hearings_next_7_days",
    "open_tasks",
    "overdue_tasks",
    "sla_compliance",
    "deadlines_missed",
)


def metric_rows(alias):
    """A VALUES list of (metric, value) for each metric of a snapshot-shaped row."""
    return "VALUES " + ", ".join(f"('{name}', {alias}.{name}::numeric)" for name in METRICS)


# Figures as of the slot's own moment (due_at), whenever the run happens: a late run writes
# what the firm looked like at the end of that day, as far as current rows allow.
ANALYTICS_SNAPSHOT = f"""
WITH {TAKE_SLOTS.format(job="analytics-snapshot")},
cases AS (
    SELECT w.tenant_id, coalesce(sum(c.demand_amount), 0) AS demand_in_dispute,
           coalesce(jsonb_object_agg(c.stage, c.n) FILTER (WHERE c.stage IS NOT NULL), '{{}}')
               AS open_cases_by_stage
    FROM work AS w
    LEFT JOIN LATERAL (
        SELECT stage, count(*) AS n, sum(demand_amount) AS demand_amount
        FROM litigation.cases WHERE tenant_id = w.tenant_id AND status = 'open' GROUP BY stage
    ) AS c ON true
    GROUP BY w.tenant_id
),
tasks AS (
    SELECT w.tenant_id,
           count(*) FILTER (WHERE t.status IN ('open', 'in_progress')) AS open_tasks,
           count(*) FILTER (WHERE t.status IN ('open', 'in_progress') AND t.due_at < w.due_at)
               AS overdue_tasks,
           -- tasks whose SLA fell in the last 30 days: share completed by their SLA
           round(avg(CASE WHEN t.completed_at <= t.sla_due_at THEN 1.0 ELSE 0.0 END)
                 FILTER (WHERE t.status <> 'cancelled' AND t.sla_due_at < w.due_at
                           AND t.sla_due_at >= w.due_at - interval '30 days'), 4)
               AS sla_compliance
    FROM work AS w
    LEFT JOIN litigation.tasks AS t ON t.tenant_id = w.tenant_id
    GROUP BY w.tenant_id
),
figures AS (
    SELECT w.tenant_id, w.local_date, w.due_at, w.firm, c.open_cases_by_stage,
           c.demand_in_dispute,
           (SELECT count(*) FROM litigation.hearings AS h
            WHERE h.tenant_id = w.tenant_id AND h.status = 'scheduled'
              AND h.starts_at >= w.due_at AND h.starts_at < w.due_at + interval '7 days')
               AS hearings_next_7_days,
           t.open_tasks, t.overdue_tasks, t.sla_compliance,
           (SELECT count(*) FROM litigation.deadlines AS d
            WHERE d.tenant_id = w.tenant_id
              AND (d.status = 'missed' OR (d.status = 'open' AND d.due_on < w.local_date))
              -- the department's own time limits are watched, not the firm's to miss
              AND NOT EXISTS (SELECT FROM gstjobs.deadline_rules AS r
                              WHERE r.key = d.rule_key AND r.binds = 'department'))
               AS deadlines_missed
    FROM work AS w JOIN cases AS c USING (tenant_id) JOIN tasks AS t USING (tenant_id)
),
anomalies AS (
    -- a figure beyond 3 standard deviations of the firm's trailing 28 days (7 days at least);
    -- the 28 snapshots are read once per firm, all metrics in one pass (not once per metric,
    -- nor each through to_jsonb, which was most of the run at L: docs/BENCHMARKS.md)
    SELECT f.tenant_id,
           jsonb_agg(jsonb_build_object('metric', today.metric, 'value', today.value,
                                        'mean', round(history.mean, 2),
                                        'stddev', round(history.sd, 2))
                     ORDER BY today.metric) AS list
    FROM figures AS f
    CROSS JOIN LATERAL (
        SELECT past.metric, avg(past.value) AS mean, stddev_samp(past.value) AS sd,
               count(past.value) AS days
        FROM gstjobs.analytics_snapshots AS s
        CROSS JOIN LATERAL ({metric_rows("s")}) AS past (metric, value)
        WHERE s.tenant_id = f.tenant_id
          AND s.local_date >= f.local_date - 28 AND s.local_date < f.local_date
        GROUP BY past.metric
    ) AS history
    JOIN LATERAL ({metric_rows("f")}) AS today (metric, value) ON today.metric = history.metric
    WHERE history.days >= 7 AND history.sd > 0 AND abs(today.value - history.mean) > 3 * history.sd
    GROUP BY f.tenant_id
),
saved AS (
    INSERT INTO gstjobs.analytics_snapshots AS s
        (tenant_id, local_date, open_cases_by_stage, demand_in_dispute, hearings_next_7_days,
         open_tasks, overdue_tasks, sla_compliance, deadlines_missed, anomalies, run_id)
    SELECT f.tenant_id, f.local_date, f.open_cases_by_stage, f.demand_in_dispute,
           f.hearings_next_7_days, f.open_tasks, f.overdue_tasks, f.sla_compliance,
           f.deadlines_missed, coalesce(a.list, '[]'), $1
    FROM figures AS f LEFT JOIN anomalies AS a USING (tenant_id)
    ON CONFLICT (tenant_id, local_date) DO NOTHING
    RETURNING s.tenant_id, s.local_date, s.anomalies
),
targets AS (
    SELECT s.tenant_id, m.id AS member_id, 'analytics-anomaly' AS kind,
           format('analytics-anomaly:%s:%s', s.tenant_id, s.local_date) AS dedupe, 4 AS urgency,
           jsonb_build_object('firm', firm.name, 'local_date', to_char(s.local_date, 'DD Mon YYYY'),
               'anomalies', (SELECT string_agg(format('- %s: %s (28-day mean %s, standard deviation %s)',
                                                      a ->> 'metric', a ->> 'value', a ->> 'mean',
                                                      a ->> 'stddev'), E'\\n')
                             FROM jsonb_array_elements(s.anomalies) AS a)) AS vars
    FROM saved AS s
    JOIN litigation.tenants AS firm ON firm.id = s.tenant_id
    JOIN litigation.members AS m ON m.tenant_id = s.tenant_id AND m.role = 'admin' AND m.active
    WHERE jsonb_array_length(s.anomalies) > 0
),
{NOTIFY}
SELECT {SLOT_COUNTS},
    (SELECT count(*) FROM saved) AS snapshots,
    (SELECT count(*) FROM saved WHERE jsonb_array_length(anomalies) > 0) AS anomalies,
    (SELECT count(*) FROM inserted) AS notified
"""


def hearing_reminders(run_id, as_of, tenant_id, dry_run):
    return run_statement("hearing-reminders", HEARING_REMINDERS, run_id, as_of, tenant_id)


def deadline_alerts(run_id, as_of, tenant_id, dry_run):
    return run_statement("deadline-alerts", DEADLINE_ALERTS, run_id, as_of, tenant_id)


def analytics_snapshot(run_id, as_of, tenant_id, dry_run):
    return run_statement("analytics-snapshot", ANALYTICS_SNAPSHOT, run_id, as_of, tenant_id)


def run_statement(name, query, run_id, as_of, tenant_id):
    """The job's one statement over every firm due, or every firm it can do (a firm whose data
    makes it fail is left out and recorded, its slot left for the next poll)."""
    enter_run(run_id, name)
    statement = plan(name, query, ["bigint", "timestamptz", "bigint", "bigint", "bigint"])
    failed = []
    counts = for_every_firm(
        name,
        lambda low, high: plpy.execute(statement, [run_id, as_of, tenant_id, low, high])[0],
        failed,
    )
    if failed:
        counts["failed_firms"] = failed
    return counts

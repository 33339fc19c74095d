"""sla-check: record newly overdue and SLA-breached tasks, notify the assignee, escalate once.

Each statement starts from a partial index holding only the tasks it may act on (open, not yet
detected; or detected, not yet escalated), so a run costs what is new, not what is open.
"""

# The server compiles plpy/common.py into this module's namespace (cli/gstjobs/resources.py):
# these names come from there. Never run, so nothing is imported in a new session.
if False:
    from common import NOTIFY, enter_run, for_every_firm, one, plan

# One statement per check and step, built from STEP with the pieces in statements(); names
# of columns and kinds come from CHECKS below, never from a caller. $1 run_id, $2 as_of,
# $3 tenant_id (NULL: every firm), $4 the batch size, $5 and $6 the range of firm ids it covers
# (every firm, unless a failure is being narrowed down to its firm: common.for_every_firm).
STEP = """
WITH batch AS (
    -- the oldest first, at most $4 a statement: a backlog (a first install) goes in batches
    SELECT t.tenant_id, t.id FROM litigation.tasks AS t
    -- a disabled firm gets no new work (gstjobs firm disable)
    JOIN litigation.tenants AS firm ON firm.id = t.tenant_id AND firm.disabled_at IS NULL
    WHERE t.status IN ('open', 'in_progress') AND {pending}
      AND ($3::bigint IS NULL OR t.tenant_id = $3) AND t.tenant_id BETWEEN $5 AND $6
    ORDER BY t.{due} LIMIT $4
),
acted AS (
    UPDATE litigation.tasks AS t
    SET {mark} = $2
    FROM batch
    WHERE t.tenant_id = batch.tenant_id AND t.id = batch.id
    RETURNING t.tenant_id, t.id, t.case_id, t.title, t.priority, t.{due} AS due, t.assignee_id,
              format('{kind}:%s:%s:%s', t.tenant_id, t.id, extract(epoch FROM t.{due})::bigint)
                  AS dedupe
),
targets AS (
    SELECT a.tenant_id, m.id AS member_id, '{kind}' AS kind, a.dedupe, {urgency} AS urgency,
           jsonb_build_object(
               'firm', firm.name, 'task', a.title,
               'case_reference', coalesce(c.reference, 'no case'), 'section', c.section,
               'client', cl.name, 'priority', a.priority,
               'due_local', gstjobs.format_local(a.due, firm.timezone),
               'assignee', coalesce(assignee.name, 'nobody')) AS vars
    FROM acted AS a
    JOIN litigation.tenants AS firm ON firm.id = a.tenant_id
    LEFT JOIN litigation.members AS assignee
           ON assignee.tenant_id = a.tenant_id AND assignee.id = a.assignee_id
    LEFT JOIN litigation.cases AS c ON c.tenant_id = a.tenant_id AND c.id = a.case_id
    LEFT JOIN litigation.clients AS cl ON cl.tenant_id = c.tenant_id AND cl.id = c.client_id
    {recipients}
    JOIN litigation.members AS m ON m.tenant_id = a.tenant_id AND m.id = r.id AND m.active
),
{notify}
SELECT (SELECT count(*) FROM acted) AS tasks,
       (SELECT count(*) FROM inserted) AS notified,
       -- tasks nobody could be told about (a count, not an anti-join of two CTEs: those
       -- have no statistics and would be compared row by row)
       (SELECT count(*) FROM acted) - (SELECT count(DISTINCT dedupe) FROM messages) AS skipped
"""

# (name, due column, detected column, escalated column, urgency of notice, of escalation)
CHECKS = (
    ("sla-breach", "sla_due_at", "sla_breach_detected_at", "sla_escalated_at", 3, 2),
    ("overdue", "due_at", "overdue_detected_at", "overdue_escalated_at", 4, 2),
)


def statements():
    """(counter prefix, SQL) for each check's detection and escalation."""
    for kind, due, detected, escalated, urgency, escalation_urgency in CHECKS:
        # first detection: the assignee is told
        yield (
            kind,
            STEP.format(
                kind=kind,
                due=due,
                mark=detected,
                urgency=urgency,
                notify=NOTIFY,
                pending=f"t.{detected} IS NULL AND t.{due} IS NOT NULL AND t.{due} <= $2",
                recipients="CROSS JOIN LATERAL (VALUES (a.assignee_id)) AS r (id)",
            ),
        )
        # still open after the firm's escalation delay: the assignee's manager, else the
        # firm's partners, once
        yield (
            kind + "-escalation",
            STEP.format(
                kind=kind + "-escalation",
                due=due,
                mark=escalated,
                urgency=escalation_urgency,
                notify=NOTIFY,
                pending=(
                    f"t.{detected} IS NOT NULL AND t.{escalated} IS NULL"
                    f" AND t.{due} <= $2 - firm.escalation_delay"
                    # the shortest delay of any firm bounds the index scan: only tasks due
                    # that long ago can be escalated, not every one detected and still open
                    f" AND t.{due} <= $2 - (SELECT min(escalation_delay) FROM litigation.tenants)"
                ),
                # each by its key (members_pkey, members_partners_idx), not a scan of the
                # firm's members for every task
                recipients=(
                    "CROSS JOIN LATERAL (SELECT assignee.manager_id WHERE assignee.manager_id IS NOT NULL"
                    " UNION ALL SELECT p.id FROM litigation.members AS p"
                    " WHERE assignee.manager_id IS NULL AND p.tenant_id = a.tenant_id"
                    " AND p.role = 'partner') AS r (id)"
                ),
            ),
        )


def sla_check(run_id, as_of, tenant_id, dry_run):
    enter_run(run_id, "sla-check")
    batch_size = int(one("batch", "SELECT gstjobs.setting('sla.batch_size') AS v", [], [])["v"])
    counts, failed = {}, []
    for name, query in statements():
        statement = plan(
            "sla:" + name, query, ["bigint", "timestamptz", "bigint", "integer", "bigint", "bigint"]
        )

        def run(low, high, statement=statement):
            return plpy.execute(statement, [run_id, as_of, tenant_id, batch_size, low, high])[0]

        row = for_every_firm(name, run, failed)
        counts[name + ".tasks"] = row.get("tasks", 0)
        counts[name + ".notified"] = row.get("notified", 0)
        counts[name + ".skipped"] = row.get("skipped", 0)
    counts["found"] = counts["sla-breach.tasks"] + counts["overdue.tasks"]
    counts["escalated"] = counts["sla-breach-escalation.tasks"] + counts["overdue-escalation.tasks"]
    counts["notified"] = sum(v for k, v in counts.items() if k.endswith(".notified"))
    counts["skipped"] = sum(v for k, v in counts.items() if k.endswith(".skipped"))
    if failed:
        counts["failed_firms"] = failed
    # a full batch may have left more: the runner commits and calls again
    counts["more"] = any(v >= batch_size for k, v in counts.items() if k.endswith(".tasks"))
    return counts

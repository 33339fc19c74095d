"""sla-check: record newly overdue and SLA-breached tasks, notify the assignee, escalate once.

Each statement starts from a partial index holding only the tasks it may act on (open, not yet
detected; or detected, not yet escalated), so a run costs what is new, not what is open.
"""

import json

# One statement per check and step; {due}, {detected}, {escalated} and {kind} come from CHECKS
# below, never from a caller.
DETECT = """
WITH batch AS (
    -- the oldest first, at most $4 a statement: a backlog (a first install) goes in batches
    SELECT t.tenant_id, t.id FROM litigation.tasks AS t
    WHERE t.status IN ('open', 'in_progress') AND t.{detected} IS NULL
      AND t.{due} IS NOT NULL AND t.{due} <= $2
      AND ($3::bigint IS NULL OR t.tenant_id = $3)
    ORDER BY t.{due} LIMIT $4
),
detected AS (
    UPDATE litigation.tasks AS t
    SET {detected} = $2
    FROM batch
    WHERE t.tenant_id = batch.tenant_id AND t.id = batch.id
    RETURNING t.tenant_id, t.id, t.case_id, t.title, t.priority, t.{due} AS due, t.assignee_id
),
recipients AS (
    SELECT d.*, m.id AS member_id, m.name AS member_name
    FROM detected AS d
    JOIN litigation.members AS m ON m.tenant_id = d.tenant_id AND m.id = d.assignee_id AND m.active
)
{notify}
"""

ESCALATE = """
WITH batch AS (
    SELECT t.tenant_id, t.id FROM litigation.tasks AS t
    JOIN litigation.tenants AS firm ON firm.id = t.tenant_id
    WHERE t.status IN ('open', 'in_progress') AND t.{detected} IS NOT NULL AND t.{escalated} IS NULL
      AND t.{due} <= $2 - firm.escalation_delay
      AND ($3::bigint IS NULL OR t.tenant_id = $3)
    ORDER BY t.{due} LIMIT $4
),
escalated AS (
    UPDATE litigation.tasks AS t
    SET {escalated} = $2
    FROM batch
    WHERE t.tenant_id = batch.tenant_id AND t.id = batch.id
    RETURNING t.tenant_id, t.id, t.case_id, t.title, t.priority, t.{due} AS due, t.assignee_id
),
recipients AS (
    -- the assignee's manager; where there is none, the firm's partners
    SELECT e.*, m.id AS member_id, m.name AS member_name
    FROM escalated AS e
    LEFT JOIN litigation.members AS assignee
           ON assignee.tenant_id = e.tenant_id AND assignee.id = e.assignee_id
    JOIN litigation.members AS m
      ON m.tenant_id = e.tenant_id AND m.active
     AND (m.id = assignee.manager_id
          OR (assignee.manager_id IS NULL AND m.role = 'partner'))
)
{notify}
"""

# Shared tail: one notification per recipient and channel, rendered from gstjobs.templates;
# the dedupe key names the task, its due time and the recipient, so no path sends one twice.
NOTIFY = """
, messages AS (
    SELECT r.*, firm.name AS firm, firm.timezone AS zone, channel.name AS channel,
           channel.address,
           jsonb_build_object(
               'firm', firm.name, 'recipient', r.member_name, 'task', r.title,
               'case_reference', coalesce(c.reference, 'no case'), 'section', c.section,
               'client', cl.name, 'priority', r.priority,
               'due_local', gstjobs.format_local(r.due, firm.timezone),
               'assignee', coalesce(assignee.name, 'nobody')) AS vars
    FROM recipients AS r
    JOIN litigation.tenants AS firm ON firm.id = r.tenant_id
    JOIN litigation.members AS m ON m.tenant_id = r.tenant_id AND m.id = r.member_id
    LEFT JOIN litigation.members AS assignee
           ON assignee.tenant_id = r.tenant_id AND assignee.id = r.assignee_id
    LEFT JOIN litigation.cases AS c ON c.tenant_id = r.tenant_id AND c.id = r.case_id
    LEFT JOIN litigation.clients AS cl ON cl.tenant_id = c.tenant_id AND cl.id = c.client_id
    CROSS JOIN LATERAL (VALUES ('email', m.email),
                               ('whatsapp', CASE WHEN firm.whatsapp_enabled THEN m.phone END))
        AS channel (name, address)
    WHERE channel.address IS NOT NULL
),
inserted AS (
    INSERT INTO gstjobs.notifications
        (tenant_id, kind, channel, recipient, member_id, subject, body, template, urgency,
         dedupe_key, run_id)
    SELECT msg.tenant_id, '{kind}', msg.channel, msg.address, msg.member_id,
           gstjobs.render(tpl.subject, msg.vars), gstjobs.render(tpl.body, msg.vars),
           jsonb_build_object('name', '{kind}', 'params', msg.vars), {urgency},
           format('{kind}:%s:%s:%s:%s:%s', msg.tenant_id, msg.id,
                  extract(epoch FROM msg.due)::bigint, msg.member_id, msg.channel),
           $1
    FROM messages AS msg
    -- a kind without a template fails loudly (subject NOT NULL), never silently
    LEFT JOIN gstjobs.templates AS tpl ON tpl.kind = '{kind}'
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM {acted}) AS tasks,
       (SELECT count(*) FROM inserted) AS notified,
       (SELECT count(*) FROM {acted} AS a
        WHERE NOT EXISTS (SELECT FROM messages AS msg
                          WHERE msg.tenant_id = a.tenant_id AND msg.id = a.id)) AS skipped
"""

# (name, due column, detected column, escalated column, urgency of notice, of escalation)
CHECKS = (
    ("sla-breach", "sla_due_at", "sla_breach_detected_at", "sla_escalated_at", 3, 2),
    ("overdue", "due_at", "overdue_detected_at", "overdue_escalated_at", 4, 2),
)


def statements():
    """(counter prefix, SQL) for each check's detection and escalation."""
    for kind, due, detected, escalated, urgency, escalation_urgency in CHECKS:
        columns = {"due": due, "detected": detected, "escalated": escalated}
        yield (
            kind,
            DETECT.format(
                notify=NOTIFY.format(kind=kind, urgency=urgency, acted="detected"), **columns
            ),
        )
        yield (
            kind + "-escalation",
            ESCALATE.format(
                notify=NOTIFY.format(
                    kind=kind + "-escalation", urgency=escalation_urgency, acted="escalated"
                ),
                **columns,
            ),
        )


def sla_check(run_id, as_of, tenant_id, dry_run):
    guard(run_id)
    batch_size = int(one("batch", "SELECT gstjobs.setting('sla.batch_size') AS v", [], [])["v"])
    counts = {}
    for name, query in statements():
        row = one(
            "sla:" + name,
            query,
            ["bigint", "timestamptz", "bigint", "integer"],
            [run_id, as_of, tenant_id, batch_size],
        )
        counts[name + ".tasks"] = row["tasks"]
        counts[name + ".notified"] = row["notified"]
        counts[name + ".skipped"] = row["skipped"]
    counts["found"] = counts["sla-breach.tasks"] + counts["overdue.tasks"]
    counts["escalated"] = counts["sla-breach-escalation.tasks"] + counts["overdue-escalation.tasks"]
    counts["notified"] = sum(v for k, v in counts.items() if k.endswith(".notified"))
    counts["skipped"] = sum(v for k, v in counts.items() if k.endswith(".skipped"))
    # a full batch may have left more: the runner commits and calls again
    counts["more"] = any(v >= batch_size for k, v in counts.items() if k.endswith(".tasks"))
    return json.dumps(counts)

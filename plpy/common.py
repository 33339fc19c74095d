"""What every PL/Python module of gstjobs gets: prepared plans kept for the session, the run
check that starts every job body, and the statement tail that writes notifications."""


def plan(key, query, types):
    """A prepared plan for query, prepared once per session and kept in SD."""
    cached = SD.get(key)
    if cached is None:
        cached = SD[key] = plpy.prepare(query, types)
    return cached


def one(key, query, types, args):
    """The first row of a prepared statement."""
    return plpy.execute(plan(key, query, types), args)[0]


JOB_ARG_TYPES = ["bigint", "timestamptz", "bigint", "boolean"]


def enter_run(run_id, job):
    """Refuse to work outside a running run of this job in this session (gstjobs.run_guard),
    and plan the job's statements in the order they are written.

    Each statement starts from the few rows it acts on and joins the rest by primary key, the
    order written. pg_cron starts every run in a new session, so every run plans its
    statements afresh: searching all join orders of an 8-table statement took ~10 ms a
    statement at L size, more than executing some of them (docs/BENCHMARKS.md).
    """
    one(
        "guard",
        "SELECT gstjobs.run_guard($1, $2), set_config('join_collapse_limit', '1', true),"
        " set_config('from_collapse_limit', '1', true)",
        ["bigint", "text"],
        [run_id, job],
    )


# The tail of every notifying statement. From a CTE `targets` (tenant_id, member_id, kind,
# dedupe, urgency, vars): one notification per recipient and channel (email when the member has
# an address; WhatsApp when the member has a phone and the firm enabled it), rendered from
# gstjobs.templates. The dedupe key is the target's dedupe plus recipient and channel, so no
# path (rerun, overlap, crash, catch-up) writes one twice. Defines `messages` and `inserted`.
NOTIFY = """
messages AS MATERIALIZED (
    -- materialized: the rendering below reads vars once per placeholder, and must not
    -- rebuild it each time
    SELECT t.tenant_id, t.member_id, t.kind, t.dedupe, t.urgency,
           t.vars || jsonb_build_object('recipient', m.name) AS vars,
           channel.name AS channel, channel.address
    FROM targets AS t
    JOIN litigation.tenants AS firm ON firm.id = t.tenant_id
    JOIN litigation.members AS m ON m.tenant_id = t.tenant_id AND m.id = t.member_id AND m.active
    CROSS JOIN LATERAL (VALUES ('email', m.email),
                               ('whatsapp', CASE WHEN firm.whatsapp_enabled THEN m.phone END))
        AS channel (name, address)
    WHERE channel.address IS NOT NULL
),
inserted AS (
    INSERT INTO gstjobs.notifications
        (tenant_id, kind, channel, recipient, member_id, subject, body, template, urgency,
         dedupe_key, run_id)
    -- a kind without a template renders NULL and fails loudly (subject NOT NULL)
    SELECT msg.tenant_id, msg.kind, msg.channel, msg.address, msg.member_id,
           gstjobs.render_subject(msg.kind, msg.vars), gstjobs.render_body(msg.kind, msg.vars),
           jsonb_build_object('name', msg.kind, 'params', msg.vars), msg.urgency,
           msg.dedupe || ':' || msg.member_id || ':' || msg.channel, $1
    FROM messages AS msg
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)"""

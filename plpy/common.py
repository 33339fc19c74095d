"""What every PL/Python module of gstjobs gets: prepared plans kept for the session, the run
check that starts every job body, the confinement of a failure to the firm that caused it, and
the statement tail that writes notifications."""


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
    statements afresh: searching all join orders of an 8-table statement took longer than
    executing some of them at L size (docs/BENCHMARKS.md has the figures).
    """
    one(
        "guard",
        "SELECT gstjobs.run_guard($1, $2), set_config('join_collapse_limit', '1', true),"
        " set_config('from_collapse_limit', '1', true)",
        ["bigint", "text"],
        [run_id, job],
    )


# Every firm: the range of firm ids a firm-scoped statement covers when it is not narrowed.
ALL_FIRMS = (-(2**63), 2**63 - 1)
# More firms than this failing the same statement is not one firm's data: the run fails.
MOST_FAILED_FIRMS = 8
FIRM_IDS = "SELECT min(id) AS low, max(id) AS high FROM litigation.tenants"


def for_every_firm(step, run, failed):
    """The counts of run(low, high), a firm-scoped statement over the firms whose ids are in
    low..high, for every firm whose work it can do.

    The jobs work on all firms in one statement (that is what makes them fast), so one firm's
    data could stop every firm's work. When the statement fails (PL/Python rolls it back), it
    runs again over each half of the firms in turn, down to the one firm that makes it fail,
    which is left out and recorded in failed: {tenant_id, step, error}, the error's SQLSTATE
    and message, never its DETAIL, which may quote the firm's rows. A failure that more than
    MOST_FAILED_FIRMS firms cause is not a firm's: it is raised, and the run fails.
    """
    try:
        return dict(run(*ALL_FIRMS))
    except plpy.SPIError as error:
        stopping(error)
        failure = error
    bounds = one("firm ids", FIRM_IDS, [], [])
    if bounds["low"] is None:
        raise failure
    totals = {}
    failing = [(bounds["low"], bounds["high"], failure)]  # every firm: it just failed
    while failing:
        low, high, failure = failing.pop()
        if low == high:
            failed.append({"tenant_id": low, "step": step, "error": brief(failure)})
            if len(failed) > MOST_FAILED_FIRMS:
                raise failure
            continue
        middle = (low + high) // 2
        for part in ((low, middle), (middle + 1, high)):
            try:
                add_up(totals, run(*part))
            except plpy.SPIError as error:
                stopping(error)
                failing.append((*part, error))
    return totals


def stopping(error):
    """Raise a cancelled statement's error again: the run was asked to stop (its timeout, an
    operator's cancel), and no firm is to blame for that."""
    if error.sqlstate == "57014":
        raise error


def add_up(totals, row):
    for key, value in dict(row).items():
        totals[key] = totals.get(key, 0) + value if isinstance(value, (int, float)) else value


def brief(error):
    """SQLSTATE and message of a failure, without the DETAIL that may quote a firm's data."""
    message = str(error.args[0] if error.args else error).splitlines()[0]
    return f"{error.sqlstate or 'XX000'}: {message}"


# A long list (a digest, the weekly summary) goes on in another email past this many characters
# ("part 2 of 3"), each item whole in one part, well under the 20,000 a body is fitted to below:
# split, never cut.
EMAIL_PART = 18000


# The tail of every notifying statement. From a CTE `targets` (tenant_id, member_id, kind,
# dedupe, urgency, vars): one notification per recipient and channel the member's choice for the
# kind names (their own, else the firm's, else email and WhatsApp: litigation.
# notification_preferences and notification_defaults), rendered from gstjobs.templates.
# WhatsApp goes only where the firm enabled it, the member has a phone and their latest word on
# it is an opt-in (litigation.whatsapp_consents); where it cannot, email goes instead when the
# choice says so. Urgency 0 and 1 (a hearing or deadline today or tomorrow) cannot be switched
# off: when the choice would send it by no channel, it goes by every one the member has. A
# message that can wait (urgency above 1, not marked through_quiet_hours) written in the quiet
# hours of the member (else the firm) is due when they end, as of the run's time ($2). The
# dedupe key is the target's dedupe plus recipient and channel, so no path (rerun, overlap,
# crash, catch-up) writes one twice. A kind the member takes in a digest (what can wait, for
# a member with an email address) is written once, on channel `digest`, due at their next
# digest time, and nothing else: dispatch-notifications gathers it into the digest email.
# Defines `messages` and `inserted`.
NOTIFY = """
messages AS MATERIALIZED (
    -- materialized: the rendering below reads vars once per placeholder, and must not
    -- rebuild it each time
    SELECT t.tenant_id, t.member_id, t.kind, t.dedupe, t.urgency,
           t.vars || jsonb_build_object('recipient', m.name) AS vars,
           channel.name AS channel, channel.address,
           CASE WHEN channel.name = 'digest'
                THEN gstjobs.next_digest_at(firm.timezone, coalesce(m.digest_at, firm.digest_at),
                                            coalesce(m.digest_days, firm.digest_days), $2)
                WHEN t.urgency > 1
                 AND NOT coalesce(own.through_quiet_hours, firms.through_quiet_hours, false)
                THEN gstjobs.quiet_hours_end(firm.timezone, coalesce(m.quiet_from, firm.quiet_from),
                                             coalesce(m.quiet_until, firm.quiet_until), $2)
           END AS held_until
    FROM targets AS t
    JOIN litigation.tenants AS firm ON firm.id = t.tenant_id
    JOIN litigation.members AS m ON m.tenant_id = t.tenant_id AND m.id = t.member_id AND m.active
    LEFT JOIN litigation.whatsapp_consents AS consent
        ON consent.tenant_id = m.tenant_id AND consent.member_id = m.id
    LEFT JOIN litigation.notification_preferences AS own
        ON own.tenant_id = m.tenant_id AND own.member_id = m.id AND own.kind = t.kind
    LEFT JOIN litigation.notification_defaults AS firms
        ON firms.tenant_id = t.tenant_id AND firms.kind = t.kind
    CROSS JOIN LATERAL (
        SELECT NOT digest.chosen AND m.email IS NOT NULL
               AND (coalesce(own.email, firms.email, true)
                    OR (coalesce(own.whatsapp, firms.whatsapp, true) AND NOT reach.whatsapp
                        AND coalesce(own.email_instead, firms.email_instead, true))) AS email,
               NOT digest.chosen AND reach.whatsapp
               AND coalesce(own.whatsapp, firms.whatsapp, true) AS whatsapp,
               reach.whatsapp AS whatsapp_reaches,
               digest.chosen AS digest
        FROM (SELECT firm.whatsapp_enabled AND m.phone IS NOT NULL
                     AND gstjobs.whatsapp_consented(consent)
                     AND gstjobs.goes_by_whatsapp(t.kind) AS whatsapp) AS reach,
             -- in the member's next digest instead: what can wait, for a member with an address
             (SELECT t.urgency > 1 AND m.email IS NOT NULL
                     AND coalesce(own.digest, firms.digest, false) AS chosen) AS digest
    ) AS chosen
    CROSS JOIN LATERAL (
        -- urgency 0 and 1 go, by every channel the member has, when the choice sends nothing
        SELECT t.urgency <= 1 AND NOT chosen.email AND NOT chosen.whatsapp AS all_channels
    ) AS cannot_be_off
    CROSS JOIN LATERAL (VALUES ('email', CASE WHEN chosen.email OR cannot_be_off.all_channels
                                              THEN m.email END),
                               ('whatsapp', CASE WHEN chosen.whatsapp
                                                   OR (cannot_be_off.all_channels
                                                       AND chosen.whatsapp_reaches)
                                                 THEN m.phone END),
                               ('digest', CASE WHEN chosen.digest THEN m.email END))
        AS channel (name, address)
    WHERE channel.address IS NOT NULL
),
inserted AS (
    INSERT INTO gstjobs.notifications
        (tenant_id, kind, channel, recipient, member_id, subject, body, template, urgency,
         dedupe_key, run_id, next_attempt_at)
    -- a kind without a template renders NULL and fails loudly (subject NOT NULL); what a firm
    -- wrote is fitted to the columns (gstjobs.fit), never a constraint error
    SELECT msg.tenant_id, msg.kind, msg.channel, msg.address, msg.member_id,
           gstjobs.fit(gstjobs.render_subject(msg.kind, msg.vars), 300, true),
           gstjobs.fit(gstjobs.render_body(msg.kind, msg.vars), 20000, false),
           jsonb_build_object('name', msg.kind, 'params', msg.vars), msg.urgency,
           msg.dedupe || ':' || msg.member_id || ':' || msg.channel, $1,
           coalesce(msg.held_until, now())
    FROM messages AS msg
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)"""


def sender_python():
    """(path, None) of the interpreter dispatch's sender (plpy/sender.py, a process of its own)
    runs on, or (None, why) when the server has none. The server's own Python, found beside
    Python's library (sys.base_prefix) before sys.executable, which PL/Python takes from the
    server's PATH: a service manager may start the server without python3 on it. Debian's
    postgresql-plpython3-15 needs only the library, so the interpreter may not be installed."""
    import os
    import sys

    name = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    beside = os.path.join(sys.base_prefix, "bin", name)
    for path in (beside, sys.executable):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path, None
    return None, (
        f"the sender cannot start: this server has no {name} interpreter ({beside};"
        f" PL/Python needs only Python's library): install it (Debian: apt-get install"
        f" {name}-minimal)"
    )

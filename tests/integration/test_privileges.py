"""The privilege matrix, read from the catalog: every table, view and function of the toolkit,
for every role. An object that is not listed here fails the test: decide its grants first.
docs/SECURITY.md's table of the roles' rights is generated from the same catalog and kept
equal to it here (GSTJOBS_WRITE_DOCS=1 rewrites it)."""

import os
import re
from pathlib import Path
from typing import Any

import psycopg

ROLES = (
    "gstjobs_runner",
    "gstjobs_operator",
    "gstjobs_admin",
    "gstjobs_provisioner",
    "gstjobs_monitor",
    "gstjobs_app",
    "public",
)
SECURITY_MD = Path(__file__).resolve().parents[2] / "docs" / "SECURITY.md"
APP_RW = {"gstjobs_app": "SELECT INSERT UPDATE DELETE"}
# the statutory rules: the firm reads them, operators change them through functions
READ_LAW = {"gstjobs_app": "SELECT", "gstjobs_operator": "SELECT"}

METRICS = {"gstjobs_operator": "SELECT", "gstjobs_monitor": "SELECT"}

# table or view -> role -> privileges (the owner has all, PUBLIC none, unless said)
TABLES: dict[str, dict[str, str]] = {
    "gstjobs.analytics_snapshots": {"gstjobs_operator": "SELECT", "gstjobs_app": "SELECT"},
    "gstjobs.annual_return_due_dates": READ_LAW,
    "gstjobs.audit_log": {"gstjobs_operator": "SELECT"},
    "gstjobs.case_event_kinds": READ_LAW,
    "gstjobs.configuration": {"gstjobs_operator": "SELECT", "gstjobs_admin": "SELECT"},
    "gstjobs.deadline_rules": READ_LAW,
    "gstjobs.deadline_list": {"gstjobs_operator": "SELECT"},
    "gstjobs.event_list": {"gstjobs_operator": "SELECT"},
    "gstjobs.calendar_list": {"gstjobs_operator": "SELECT"},
    "gstjobs.notified_dates": READ_LAW,
    # the kinds a member chooses channels for: the firm reads them, operators see them
    "gstjobs.notification_kinds": {"gstjobs_app": "SELECT", "gstjobs_operator": "SELECT"},
    "gstjobs.notification_choices": {"gstjobs_operator": "SELECT"},
    "gstjobs.firms": {"gstjobs_operator": "SELECT", "gstjobs_provisioner": "SELECT"},
    "gstjobs.health": {"gstjobs_operator": "SELECT"},
    "gstjobs.health_reports": {"gstjobs_operator": "SELECT"},
    "gstjobs.installation": {},
    "gstjobs.installed_extensions": {},
    "gstjobs.job_overview": {"gstjobs_operator": "SELECT"},
    # the metric views: the exporter's login (gstjobs_monitor) reads these and nothing else
    "gstjobs.job_metrics": METRICS,
    "gstjobs.job_run_metrics": METRICS,
    "gstjobs.schedule_metrics": METRICS,
    "gstjobs.job_stats": {"gstjobs_operator": "SELECT"},
    "gstjobs.outbox_metrics": METRICS,
    "gstjobs.slot_metrics": METRICS,
    "gstjobs.jobs": {"gstjobs_operator": "SELECT"},
    "gstjobs.notifications": {"gstjobs_app": "SELECT"},
    "gstjobs.outbox": {"gstjobs_operator": "SELECT"},
    "gstjobs.run_history": {"gstjobs_operator": "SELECT"},
    "gstjobs.runs": {},
    "gstjobs.schema_objects": {"gstjobs_operator": "SELECT"},
    "gstjobs.secrets": {},
    "gstjobs.send_rates": {},
    "gstjobs.setting_defaults": {"gstjobs_operator": "SELECT", "gstjobs_admin": "SELECT"},
    "gstjobs.settings": {},
    "gstjobs.slots": {},
    "gstjobs.templates": {"gstjobs_operator": "SELECT"},
    "litigation.case_events": APP_RW,
    "litigation.cases": APP_RW,
    "litigation.clients": APP_RW,
    "litigation.deadlines": APP_RW,
    "litigation.hearings": APP_RW,
    "litigation.holiday_calendars": APP_RW,
    "litigation.holidays": APP_RW,
    "litigation.members": APP_RW,
    # a choice is set, changed (not moved to another member or kind) and removed
    "litigation.notification_defaults": APP_RW,
    "litigation.notification_preferences": APP_RW,
    "litigation.tasks": APP_RW,
    "litigation.tenants": {"gstjobs_app": "SELECT UPDATE"},
    # a member's word is corrected, never deleted (the opt-in is WhatsApp's proof)
    "litigation.whatsapp_consents": {"gstjobs_app": "SELECT INSERT UPDATE"},
}

RUN = "gstjobs_runner gstjobs_operator"
SETTINGS = "gstjobs_operator gstjobs_admin"
# function -> roles that may execute it
FUNCTIONS: dict[str, str] = {
    "gstjobs.add_counts(jsonb,jsonb)": "",
    "gstjobs.add_firm(text,text,boolean,text,text,text)": "gstjobs_provisioner",
    "gstjobs.set_firm_disabled(bigint,boolean,text)": "gstjobs_provisioner",
    "gstjobs.adopt_installation(text)": SETTINGS,
    "gstjobs.installation_problem()": "",
    "gstjobs.check_setting()": "",
    "gstjobs.cron_problem(text)": "gstjobs_operator",
    "gstjobs.cancel_job(text,text)": "gstjobs_operator",
    "gstjobs.duration_words(integer)": "",
    # stops what the timeouts say, nothing else
    "gstjobs.enforce_timeouts()": "gstjobs_operator",
    "gstjobs.schedule_facts()": "gstjobs_operator gstjobs_monitor",
    "gstjobs.stop_run(bigint,text,text)": "",
    "gstjobs.compute_event_deadlines(bigint,bigint)": "",
    "gstjobs.deadline_dates(gstjobs.deadline_rules,litigation.case_events)": "",
    "gstjobs.deadline_counting()": "",
    "gstjobs.define_deadline_rule(jsonb,text)": "gstjobs_operator",
    "gstjobs.define_notified_date(jsonb,text)": "gstjobs_operator",
    "gstjobs.record_event(bigint,bigint,text,date,text,integer,text,text)": "gstjobs_operator",
    "gstjobs.correct_event(bigint,bigint,jsonb,text)": "gstjobs_operator",
    "gstjobs.remove_event(bigint,bigint,text)": "gstjobs_operator",
    "gstjobs.add_holidays(bigint,text,jsonb,text)": "gstjobs_operator",
    "gstjobs.remove_holidays(bigint,text,date[],text)": "gstjobs_operator",
    "gstjobs.set_closed_weekdays(bigint,text,smallint[],text)": "gstjobs_operator",
    "gstjobs.set_notification_choice(bigint,bigint,text,jsonb,text)": "gstjobs_operator",
    "gstjobs.set_quiet_hours(bigint,bigint,time without time zone,time without time zone,text)": (
        "gstjobs_operator"
    ),
    "gstjobs.notification_choice(bigint,bigint,text)": "",
    "gstjobs.quiet_hours_of(bigint,bigint)": "",
    "gstjobs.set_digest_time(bigint,bigint,jsonb,text)": "gstjobs_operator",
    "gstjobs.digest_time_of(bigint,bigint)": "",
    "gstjobs.next_digest_at(text,time without time zone,smallint[],timestamp with time zone)": "",
    "gstjobs.check_choice_target(bigint,bigint,text)": "",
    "gstjobs.quiet_hours_end(text,time without time zone,time without time zone,timestamp with time zone)": "",
    "gstjobs.known_case(bigint,bigint)": "",
    "gstjobs.event_outcome(bigint,bigint)": "",
    "gstjobs.delivery_problems(boolean)": "",
    "gstjobs.display_timezone()": SETTINGS + " gstjobs_provisioner",
    "gstjobs.doctor_facts()": "gstjobs_operator",
    "gstjobs.forget_event_deadlines(bigint,bigint)": "",
    "gstjobs.due_slots(text,timestamp with time zone,bigint)": "",
    "gstjobs.fields_of(jsonb,regclass,text)": "",
    "gstjobs.fit(text,integer,boolean)": "",
    "gstjobs.format_local(timestamp with time zone,text)": "",
    "gstjobs.job(text)": "gstjobs_operator",
    "gstjobs.keep_audit_log()": "",
    "gstjobs.legal_date(date)": "",
    "gstjobs.mark_crashed_runs()": "",
    "gstjobs.open_day(bigint,text,date,integer)": "",
    "gstjobs.period_end(date,integer,text)": "",
    "gstjobs.recomputable(text,text,text)": "",
    "gstjobs.recompute_deadlines(bigint,text[],text)": "",
    "gstjobs.registered_job(text)": "",
    "gstjobs.render_body(text,jsonb)": "",
    "gstjobs.render_subject(text,jsonb)": "",
    "gstjobs.reschedule(text,text,text)": "gstjobs_operator",
    "gstjobs.retry_notification(bigint,text)": "gstjobs_operator",
    # the one door into a run, and its two steps, which refuse to work outside it
    "gstjobs.run_batch(bigint)": RUN,
    "gstjobs.run_begin(text,timestamp with time zone,bigint,boolean,text,boolean)": RUN,
    "gstjobs.run_guard(bigint,text)": "",
    "gstjobs.run_job(text,timestamp with time zone,bigint,boolean,text,boolean,bigint)": RUN,
    "gstjobs.run_notifications(bigint)": "",
    "gstjobs.secret(text)": "",
    "gstjobs.secret_endpoint(text)": "",
    "gstjobs.secret_problem(text)": SETTINGS,
    "gstjobs.set_active(text,boolean,text)": "gstjobs_operator",
    "gstjobs.set_annual_return_due_date(text,date,text,date,text)": "gstjobs_operator",
    "gstjobs.set_setting(text,text,text)": SETTINGS,
    "gstjobs.set_settings(jsonb,text)": SETTINGS,
    "gstjobs.setting(text)": "",
    "gstjobs.setting_problem(text,text)": SETTINGS,
    "gstjobs.setting_definition(text)": SETTINGS,
    "gstjobs.start_run(text,timestamp with time zone,bigint,boolean,text,boolean)": "",
    "litigation.calendar_changed()": "",
    "litigation.consent_changed()": "",
    "gstjobs.honour_consent(bigint,bigint)": "",
    # the consent rule over a row it is given: gstjobs.notification_choices calls it as its reader
    "gstjobs.whatsapp_consented(litigation.whatsapp_consents)": "gstjobs_operator",
    # whether a kind may go by WhatsApp: the same view calls it as its reader
    "gstjobs.goes_by_whatsapp(text)": "gstjobs_operator",
    "litigation.event_changed()": "",
    "litigation.forget_detection()": "",
    "litigation.gstin_check_character(text)": "gstjobs_app",
    "litigation.is_iana_timezone(text)": "gstjobs_app",
    "litigation.is_valid_gstin(text)": "gstjobs_app",
    "litigation.is_email_address(text)": "gstjobs_app",
    "litigation.is_plain_text(text)": "gstjobs_app",
    "litigation.is_working_time(timestamp with time zone)": "gstjobs_app",
    "litigation.note_hand_change()": "",
}
for job in (
    "analytics_snapshot",
    "deadline_alerts",
    "dispatch_notifications",
    "health_check",
    "hearing_reminders",
    "heartbeat",
    "purge_history",
    "sla_check",
):
    # executed by the owner only, inside gstjobs.run_batch
    FUNCTIONS[f"gstjobs.job_{job}(bigint,timestamp with time zone,bigint,boolean)"] = ""


def test_table_privileges_match_the_matrix(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """SELECT c.oid::regclass::text,
                  array(SELECT r || ':' || p FROM unnest(%s::text[]) AS r,
                        unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p
                        -- a column grant counts: UPDATE of some columns of tenants
                        WHERE CASE WHEN p = 'DELETE' THEN has_table_privilege(r, c.oid, p)
                                   ELSE has_any_column_privilege(r, c.oid, p) END),
                  pg_get_userbyid(c.relowner)
           FROM pg_class AS c
           WHERE c.relnamespace IN ('gstjobs'::regnamespace, 'litigation'::regnamespace)
             AND c.relkind IN ('r', 'v', 'm', 'p')
           ORDER BY 1""",
        (list(ROLES),),
    ).fetchall()
    actual = {name: set(grants) for name, grants, _ in rows}
    assert set(actual) == set(TABLES), "objects without a row in the matrix, or gone"
    for name, expected in TABLES.items():
        wanted = {
            f"{role}:{p}" for role, privileges in expected.items() for p in privileges.split()
        }
        assert actual[name] == wanted, name
    assert {owner for _, _, owner in rows} == {"gstjobs_owner"}


def test_function_privileges_match_the_matrix(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """SELECT p.oid::regprocedure::text,
                  array(SELECT r FROM unnest(%s::text[]) AS r
                        WHERE has_function_privilege(r, p.oid, 'EXECUTE')
                          AND (r = 'public' OR has_schema_privilege(r, p.pronamespace, 'USAGE'))),
                  p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner)
           FROM pg_proc AS p
           WHERE p.pronamespace IN ('gstjobs'::regnamespace, 'litigation'::regnamespace)
           ORDER BY 1""",
        (list(ROLES),),
    ).fetchall()
    actual = {name: set(roles) for name, roles, *_ in rows}
    assert set(actual) == set(FUNCTIONS), "functions without a row in the matrix, or gone"
    for name, roles in FUNCTIONS.items():
        assert actual[name] == set(roles.split()), name
    for name, _, security_definer, config, owner in rows:
        assert owner == "gstjobs_owner", name
        if security_definer:
            # pg_temp named, and last: a caller's temporary tables and types are never found
            # before the catalog's (unnamed, pg_temp is searched first for them)
            paths = [c.removeprefix("search_path=") for c in config or [] if "search_path=" in c]
            assert paths and paths[0].split(", ")[-1] == "pg_temp", f"{name}: {paths}"


def test_roles_and_cron(conn: psycopg.Connection[Any]) -> None:
    facts = conn.execute(
        """SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = 'gstjobs_runner'),
                  (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'gstjobs_owner'),
                  has_schema_privilege('gstjobs_operator', 'cron', 'USAGE'),
                  has_schema_privilege('gstjobs_runner', 'cron', 'USAGE'),
                  has_schema_privilege('gstjobs_app', 'cron', 'USAGE'),
                  has_schema_privilege('gstjobs_monitor', 'cron', 'USAGE'),
                  has_function_privilege('gstjobs_operator', 'cron.schedule(text,text,text)', 'EXECUTE')
                      AND has_schema_privilege('gstjobs_operator', 'cron', 'USAGE')"""
    ).fetchone()
    assert facts == (False, False, False, False, False, False, False)
    commands = [r[0] for r in conn.execute("SELECT command FROM cron.job")]
    assert commands and all(
        c.startswith("CALL gstjobs.run_job('") and c.count("'") == 2 for c in commands
    )


RIGHTS_BEGIN = "<!-- rights: generated from the catalog by tests/integration/test_privileges.py -->"
RIGHTS_END = "<!-- /rights -->"
LABELS = {
    "gstjobs_runner": "runner",
    "gstjobs_operator": "operator",
    "gstjobs_admin": "admin",
    "gstjobs_provisioner": "provisioner",
    "gstjobs_monitor": "monitor",
    "gstjobs_app": "app",
}


def rights_table(conn: psycopg.Connection[Any]) -> str:
    """The roles' rights as a Markdown table: every object some role other than the owner may
    use, with what each role may do (from the catalog, as the matrix tests read it)."""
    roles = list(LABELS)
    tables = conn.execute(
        """SELECT c.oid::regclass::text, r,
                  array_to_string(array(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p
                      WHERE CASE WHEN p = 'DELETE' THEN has_table_privilege(r, c.oid, p)
                                 ELSE has_any_column_privilege(r, c.oid, p) END), ' ')
           FROM pg_class AS c, unnest(%s::text[]) AS r
           WHERE c.relnamespace IN ('gstjobs'::regnamespace, 'litigation'::regnamespace)
             AND c.relkind IN ('r', 'v', 'm', 'p')""",
        (roles,),
    ).fetchall()
    functions = conn.execute(
        """SELECT p.oid::regprocedure::text, r, 'EXECUTE'
           FROM pg_proc AS p, unnest(%s::text[]) AS r
           WHERE p.pronamespace IN ('gstjobs'::regnamespace, 'litigation'::regnamespace)
             AND has_function_privilege(r, p.oid, 'EXECUTE')
             AND has_schema_privilege(r, p.pronamespace, 'USAGE')""",
        (roles,),
    ).fetchall()
    rights: dict[str, dict[str, str]] = {}
    for name, role, privileges in [*tables, *functions]:
        if privileges:
            rights.setdefault(re.sub(r"\(.*\)", "()", name), {})[role] = privileges.lower()
    lines = [
        "| object | " + " | ".join(LABELS.values()) + " |",
        "|---|" + "---|" * len(LABELS),
    ]
    for name in sorted(rights):
        cells = [rights[name].get(role, "") for role in roles]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_security_md_shows_the_rights_the_catalog_grants(conn: psycopg.Connection[Any]) -> None:
    text = SECURITY_MD.read_text(encoding="utf-8")
    before, rest = text.split(RIGHTS_BEGIN, 1)
    _, after = rest.split(RIGHTS_END, 1)
    wanted = f"{before}{RIGHTS_BEGIN}\n{rights_table(conn)}\n{RIGHTS_END}{after}"
    if os.environ.get("GSTJOBS_WRITE_DOCS") == "1":
        SECURITY_MD.write_text(wanted, encoding="utf-8")
    assert text == wanted, (
        "docs/SECURITY.md's rights table is stale: GSTJOBS_WRITE_DOCS=1 rewrites it"
    )

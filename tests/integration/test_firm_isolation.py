"""One firm's data never stops another firm's work. A statement that fails is narrowed to the
firm that made it fail; every other firm's work is done in the same run, which succeeds and
records the firm it left out; health-check reports it. And what a firm can store, the jobs can
handle: the cases of the issue that once stopped a job for every firm are kept here."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.integration.conftest import LONDON, at, notifications, run

# both firms with work for each job: a breached task, a hearing tomorrow, a deadline
# tomorrow; firm 1 in Mumbai, firm 2 in London
WORK = """
INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, sla_due_at) VALUES
    (1, 1, 1, 'Reply to SCN', 3, '2026-11-20 09:00+05:30'),
    (2, 2, 3, 'Paper book for the Tribunal', 6, '2026-11-20 09:00+05:30');
INSERT INTO litigation.hearings (tenant_id, id, case_id, starts_at, forum) VALUES
    (1, 1, 1, '2026-11-21 10:30+05:30', 'Adjudicating Authority'),
    (2, 2, 3, '2026-11-21 10:30+00', 'GST Appellate Tribunal');
INSERT INTO litigation.deadlines (tenant_id, id, case_id, kind, due_on, owner_id) VALUES
    (1, 1, 1, 'reply to SCN', '2026-11-21', 3),
    (2, 2, 3, 'appeal', '2026-11-21', 6);
"""

# a test-only fault: whatever writes a notification of the poisoned firms fails
POISON = """
CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tenant_id = ANY (string_to_array(TG_ARGV[0], ',')::bigint[]) THEN
        RAISE EXCEPTION 'this firm''s data breaks the statement'
            USING DETAIL = 'a row of firm ' || NEW.tenant_id || ': secret client name';
    END IF;
    RETURN NEW;
END $$;
"""

AS_OF = {
    "sla-check": at("2026-11-20 10:00"),
    # a quarter of an hour after the slot in London, hours after it in Mumbai (within the
    # catch-up limit): both firms' slots are due
    "hearing-reminders": at("2026-11-20 08:15", LONDON),
    "deadline-alerts": at("2026-11-20 09:15", LONDON),
}


def poison(conn: psycopg.Connection[Any], table: str, firms: str) -> None:
    conn.execute(POISON)
    conn.execute(
        f"CREATE TRIGGER poison BEFORE INSERT ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION public.poison('{firms}')"
    )


def ledger(conn: psycopg.Connection[Any], job: str) -> tuple[str, dict[str, Any]]:
    row = conn.execute(
        "SELECT status, counts FROM gstjobs.runs WHERE job = %s ORDER BY id DESC LIMIT 1", (job,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.parametrize("job", ["sla-check", "hearing-reminders", "deadline-alerts"])
def test_a_failing_firm_is_left_out_and_every_other_firm_is_served(
    firm: psycopg.Connection[Any], job: str
) -> None:
    firm.execute(WORK)
    poison(firm, "gstjobs.notifications", "2")
    counts = run(firm, job, AS_OF[job])  # asserts the run succeeded
    served = {n["tenant_id"] for n in notifications(firm)}
    assert served == {1}, served
    assert counts["notified"] >= 1
    [left_out] = counts["failed_firms"]
    assert (
        left_out["tenant_id"] == 2 and "this firm's data breaks the statement" in left_out["error"]
    )
    assert left_out["error"].startswith("P0001: ")
    assert "secret client name" not in str(counts)  # no DETAIL: it may quote the firm's rows
    # the firm's slot is not taken: once its data is mended, the next poll does its work
    firm.execute("DROP TRIGGER poison ON gstjobs.notifications")
    later = run(firm, job, AS_OF[job] + timedelta(minutes=15))
    assert "failed_firms" not in later
    assert {n["tenant_id"] for n in notifications(firm)} == {1, 2}


def test_a_failing_firm_is_left_out_of_analytics_snapshots(firm: psycopg.Connection[Any]) -> None:
    firm.execute(WORK)
    poison(firm, "gstjobs.analytics_snapshots", "1")
    job = "analytics-snapshot"
    counts = run(firm, job, at("2026-11-21 00:00", LONDON))
    assert [f["tenant_id"] for f in counts["failed_firms"]] == [1]
    assert firm.execute("SELECT tenant_id FROM gstjobs.analytics_snapshots").fetchall() == [(2,)]


def test_health_check_names_the_firm_left_out_and_what_to_do(firm: psycopg.Connection[Any]) -> None:
    firm.execute(WORK)
    poison(firm, "gstjobs.notifications", "2")
    run(firm, "sla-check", AS_OF["sla-check"])
    firm.execute("UPDATE gstjobs.jobs SET scheduled_since = now()")
    # health-check looks at the runs of the 24 hours before it: the sla-check ran just now
    run(firm, "health-check", datetime.now(UTC))
    report = firm.execute(
        "SELECT problems FROM gstjobs.health_reports ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert report is not None
    [found] = [p for p in report[0] if p["code"] == "firm-failed"]
    assert found["subject"] == "sla-check firm 2"
    assert "left firm 2 out of 1 run(s)" in found["message"]
    assert "the sla-breach statement fail" in found["message"]
    assert "every other firm's work was done" in found["advice"]


def test_the_firms_at_fault_are_found_among_many(conn: psycopg.Connection[Any]) -> None:
    """Ten firms, three of them at fault: each found (by halving the firms), the seven others'
    breaches notified in the same run."""
    from gstjobs.datagen import SIZES, generate

    generate(conn, SIZES["seed"], seed=3, anchor=at("2026-11-20 07:00"))
    poison(conn, "gstjobs.notifications", "3,7,8")
    counts = run(conn, "sla-check", at("2026-11-20 07:00"))
    assert sorted({f["tenant_id"] for f in counts["failed_firms"]}) == [3, 7, 8]
    served = {r[0] for r in conn.execute("SELECT DISTINCT tenant_id FROM gstjobs.notifications")}
    assert served and served.isdisjoint({3, 7, 8})
    firms_with_breaches = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT tenant_id FROM litigation.tasks WHERE sla_breach_detected_at IS NOT NULL"
        )
    }
    assert firms_with_breaches == served


def test_a_failure_of_every_firm_is_not_a_firms_and_fails_the_run(
    conn: psycopg.Connection[Any],
) -> None:
    from gstjobs.datagen import SIZES, generate

    generate(conn, SIZES["seed"], seed=3, anchor=at("2026-11-20 07:00"))
    poison(conn, "gstjobs.notifications", ",".join(str(i) for i in range(1, 11)))
    called = conn.execute(
        "CALL gstjobs.run_job('sla-check', as_of => %s)", (at("2026-11-20 07:00"),)
    ).fetchone()
    assert called is not None
    status = conn.execute("SELECT status, error FROM gstjobs.runs WHERE id = %s", called).fetchone()
    assert status is not None and status[0] == "failed"
    assert "this firm's data breaks the statement" in status[1]
    assert conn.execute("SELECT count(*) FROM gstjobs.notifications").fetchone() == (0,)


# ------------------------------------------------------------- what a firm stores, handled ----


def as_application(
    conn: psycopg.Connection[Any], firm_id: int, statement: str, *params: Any
) -> None:
    """statement as the firm application confined to firm_id, committed."""
    with conn.transaction():
        conn.execute("SET LOCAL ROLE gstjobs_app")
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(firm_id),))
        conn.execute(statement, params)


def test_the_longest_title_reference_and_forum_fit_the_notification(
    firm: psycopg.Connection[Any],
) -> None:
    """Once: a 300-character title stopped every sla-check (notifications_subject_check), a
    100-character reference with a 200-character forum every hearing-reminders."""
    firm.execute(WORK)
    as_application(firm, 2, "UPDATE litigation.tasks SET title = %s", "Reply " * 49 + "now!!!")
    as_application(firm, 2, "UPDATE litigation.cases SET reference = %s", "R" * 100)
    as_application(firm, 2, "UPDATE litigation.hearings SET forum = %s", "Forum " * 33 + "ab")
    for job in ("sla-check", "hearing-reminders"):
        counts = run(firm, job, AS_OF[job])
        assert "failed_firms" not in counts, counts
    long = [n for n in notifications(firm) if n["tenant_id"] == 2]
    assert {n["kind"] for n in long} == {"sla-breach", "hearing-reminder"}
    for note in long:
        assert len(note["subject"]) <= 300
        assert note["subject"].endswith("…") and not note["subject"][:-1].endswith(" ")


@pytest.mark.parametrize(
    ("statement", "value", "constraint"),
    [
        # once: every sla-check failed with 'timestamp out of range'
        (
            "UPDATE litigation.tenants SET escalation_delay = %s",
            "200000 years",
            "tenants_escalation_delay_bounded",
        ),
        # once: the email could not be built, and every dispatch run failed
        (
            "UPDATE litigation.tasks SET title = %s",
            "Reply\r\nBcc: spy@evil.example",
            "tasks_title_plain",
        ),
        ("UPDATE litigation.tenants SET email_from = %s", "a@[b", "tenants_email_from_address"),
        (
            "UPDATE litigation.tenants SET reply_to = %s",
            "desk@firm.example.in\x85",
            "tenants_reply_to_address",
        ),
        ("UPDATE litigation.members SET email = %s", "x@[y.z", "members_email_address"),
        (
            "UPDATE litigation.members SET email = %s",
            "a\x1cb@firm.example.in",
            "members_email_address",
        ),
        (
            "UPDATE litigation.members SET email = %s",
            "a\u00a0b@firm.example.in",
            "members_email_address",
        ),
        ("UPDATE litigation.hearings SET venue = %s", "Court 1\x1b[2J", "hearings_venue_plain"),
        ("UPDATE litigation.tasks SET due_at = %s", "infinity", "tasks_times_bounded"),
        (
            "UPDATE litigation.hearings SET starts_at = %s",
            "294276-12-31 23:59:59+00",
            "hearings_starts_at_bounded",
        ),
        (
            "UPDATE litigation.deadlines SET due_on = %s",
            "5874897-12-31",
            "deadlines_due_on_bounded",
        ),
    ],
    ids=lambda v: str(v)[:30],
)
def test_what_the_jobs_cannot_carry_is_refused_when_it_is_written(
    firm: psycopg.Connection[Any], statement: str, value: str, constraint: str
) -> None:
    firm.execute(WORK)
    with pytest.raises(errors.CheckViolation) as refused:
        as_application(firm, 2, statement, value)
    assert constraint in str(refused.value)


def test_a_message_that_cannot_be_built_is_that_messages_failure(
    firm: psycopg.Connection[Any],
) -> None:
    """Rows stored before the limits (written here as the owner would have): a recipient the
    email package refuses is dead at once with the reason; a subject with a line break goes
    with a space instead; the rest go; the run succeeds."""
    from tests.delivery.conftest import SmtpSink

    smtp = SmtpSink()
    smtp.start()
    try:
        firm.execute(
            "SELECT gstjobs.set_settings(jsonb_build_object('smtp.host', '127.0.0.1',"
            " 'smtp.port', %s::text))",
            (str(smtp.port),),
        )
        firm.execute(
            "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body,"
            " dedupe_key) VALUES"
            " (2, 'sla-breach', 'email', 'x@[y.z', 'To a bad address', 'b', 'bad-address'),"
            " (2, 'sla-breach', 'email', 'vikram@mehta.example.co.uk', E'Two\\r\\nBcc: spy@evil.example',"
            "  'b', 'bad-subject'),"
            " (1, 'sla-breach', 'email', 'aarav@mehta.example.in', 'Fine', 'b', 'fine')"
        )
        counts = run(firm, "dispatch-notifications", datetime.now(UTC))
        assert counts["sent"] == 2 and counts["dead"] == 1
        states = dict(
            firm.execute(
                "SELECT dedupe_key, status || ': ' || coalesce(last_error, '') FROM gstjobs.notifications"
            ).fetchall()
        )
        assert states["bad-address"].startswith("dead: the message cannot be built")
        assert states["bad-subject"] == "sent: " and states["fine"] == "sent: "
        [odd] = [m for m in smtp.received if "Two" in str(m["Subject"])]
        assert str(odd["Subject"]) == "Two  Bcc: spy@evil.example" and odd["Bcc"] is None
    finally:
        smtp.stop()


def test_one_address_rule_for_every_check_and_the_email_package(
    conn: psycopg.Connection[Any],
) -> None:
    """litigation.is_email_address (every CHECK on an address) and plpy/settings.py's rule (the
    settings) accept the same addresses, and the email package builds a message for each one
    they accept: generated addresses, any text, and the ones that once got through."""
    from email.message import EmailMessage

    from gstjobs.resources import load_plpy_module
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    rule = load_plpy_module("settings")
    checked = {"accepted": 0, "refused": 0}

    @settings(
        max_examples=300,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        st.one_of(
            st.emails(),
            st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
            st.sampled_from(
                ["a@[b", "x@[y.z", "a\x1cb@c.in", "a\x85b@c.in", "a\u00a0b@c.in", "a@b", "a@-b.in"]
            ),
        )
    )
    def agree(address: str) -> None:
        in_sql = conn.execute("SELECT litigation.is_email_address(%s)", (address,)).fetchone()
        in_python = rule.value_problem("email", address) is None
        assert in_sql == (in_python,), address
        checked["accepted" if in_python else "refused"] += 1
        if in_python:
            message = EmailMessage()
            message["From"] = message["To"] = address
            message.set_content("x")
            assert address.encode() in message.as_bytes()

    agree()
    assert checked["accepted"] > 25 and checked["refused"] > 25, checked

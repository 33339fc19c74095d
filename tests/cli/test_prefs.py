"""gstjobs prefs as an operator: what a member receives shown as it applies, every change
audited with what applied before, every refusal exit 2 with nothing changed."""

from typing import Any

import psycopg
import pytest

from tests.cli.conftest import Invoke, as_json


def audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, details, reason FROM gstjobs.audit_log ORDER BY id"
    ).fetchall()


def kinds_of(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["kind"]: row for row in rows}


def test_show_says_what_applies_and_whose_choice_it_is(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    shown = gstjobs("prefs", "show", "--tenant", "1", "3")
    assert shown.exit_code == 0, shown.output
    assert "Aarav Shah (associate): an email address, WhatsApp reaches them" in shown.stdout
    assert "hearing-reminder" in shown.stdout and "21:00-08:00" in shown.stdout
    rows = kinds_of(as_json(gstjobs("prefs", "show", "--tenant", "1", "3", "--format", "json")))
    assert len(rows) == 10
    # the weekly summary, a list, is no WhatsApp template message: never WhatsApp
    summary = rows.pop("deadlines-ahead")
    assert (summary["email"], summary["whatsapp"], summary["chosen_by"]) == (True, False, "default")
    assert {(r["email"], r["whatsapp"], r["chosen_by"]) for r in rows.values()} == {
        (True, True, "default")
    }
    rohan = gstjobs("prefs", "show", "--tenant", "1", "2")
    assert "Rohan Iyer (manager): an email address, no WhatsApp" in rohan.stdout
    firm_rows = as_json(gstjobs("prefs", "show", "--tenant", "1", "--format", "json"))
    assert "member" not in firm_rows[0] and firm_rows[0]["quiet_hours"] == "21:00-08:00"


def test_set_changes_the_firm_and_a_member_and_each_change_is_audited(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    done = gstjobs(
        "prefs", "set", "--tenant", "1", "firm", "--kind", "analytics-anomaly", "--no-whatsapp",
        "--reason", "partners asked",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "the firm, analytics-anomaly: email, email instead" in done.stdout
    done = gstjobs(
        "prefs", "set", "--tenant", "1", "3", "--kind", "sla-breach", "--kind", "overdue",
        "--no-email", "--through-quiet-hours", "--quiet", "22:30-06:45",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "member 3, sla-breach: whatsapp" in done.stdout and "through quiet hours" in done.stdout
    assert "member 3: quiet hours 22:30-06:45 (member's)" in done.stdout

    done = gstjobs("prefs", "set", "--tenant", "1", "3", "--kind", "deadline-overdue", "--digest")
    assert "in the digest" in done.stdout, done.output
    rows = kinds_of(as_json(gstjobs("prefs", "show", "--tenant", "1", "3", "--format", "json")))
    assert rows["deadline-overdue"]["digest"] and rows["deadline-overdue"]["chosen_by"] == "member"
    assert (
        rows["overdue"]["digest_at"] == "08:00"
        and rows["overdue"]["digest_days"] == "1,2,3,4,5,6,7"
    )
    assert (rows["sla-breach"]["email"], rows["sla-breach"]["whatsapp"]) == (False, True)
    assert rows["sla-breach"]["chosen_by"] == "member" and rows["sla-breach"]["through_quiet_hours"]
    assert (
        rows["analytics-anomaly"]["chosen_by"] == "firm"
        and not rows["analytics-anomaly"]["whatsapp"]
    )
    assert rows["hearing-reminder"]["chosen_by"] == "default"
    assert {r["quiet_hours"] for r in rows.values()} == {"22:30-06:45"}
    # the firm application reads the same rows
    assert firm.execute(
        "SELECT kind, email, whatsapp, through_quiet_hours FROM litigation.notification_preferences"
        " ORDER BY kind"
    ).fetchall() == [
        ("deadline-overdue", True, True, False),
        ("overdue", False, True, True),
        ("sla-breach", False, True, True),
    ]

    trail = audit(firm)
    assert [(a[0], a[1]) for a in trail] == [
        ("gstjobs_test_operator", "notification-choice.set"),
        ("gstjobs_test_operator", "notification-choice.set"),
        ("gstjobs_test_operator", "notification-choice.set"),
        ("gstjobs_test_operator", "quiet-hours.set"),
        ("gstjobs_test_operator", "notification-choice.set"),
    ]
    assert trail[0][3] == "partners asked"
    assert trail[1][2]["old"]["chosen_by"] == "default" and trail[1][2]["new"]["email"] is False
    assert trail[3][2]["old"]["quiet_hours_by"] == "firm"

    # back to the firm's: the member's choices and hours removed, audited too
    done = gstjobs(
        "prefs", "set", "--tenant", "1", "3", "--kind", "all", "--reset", "--quiet", "firm"
    )
    assert done.exit_code == 0, done.output
    rows = kinds_of(as_json(gstjobs("prefs", "show", "--tenant", "1", "3", "--format", "json")))
    assert {r["chosen_by"] for r in rows.values()} == {"default", "firm"}
    assert {r["quiet_hours"] for r in rows.values()} == {"21:00-08:00"}
    assert len(audit(firm)) == 5 + 10 + 1


def test_whatsapp_for_every_kind_leaves_the_weekly_summary_to_email(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    """--kind all --whatsapp chooses WhatsApp for every kind that may go by it; the weekly
    summary (a list) keeps its choice, and says so by leaving it out. Switching WhatsApp off
    for all includes it."""
    done = gstjobs(
        "prefs", "set", "--tenant", "1", "3", "--kind", "all", "--whatsapp", "--no-email"
    )
    assert done.exit_code == 0, done.output
    assert "member 3, overdue: whatsapp, email instead" in done.stdout
    assert "member 3, deadlines-ahead: unchanged (never goes by WhatsApp)" in done.stdout
    rows = kinds_of(as_json(gstjobs("prefs", "show", "--tenant", "1", "3", "--format", "json")))
    summary = rows.pop("deadlines-ahead")
    assert (summary["email"], summary["whatsapp"], summary["chosen_by"]) == (True, False, "default")
    assert {(r["email"], r["whatsapp"], r["chosen_by"]) for r in rows.values()} == {
        (False, True, "member")
    }
    off = gstjobs("prefs", "set", "--tenant", "1", "3", "--kind", "all", "--no-whatsapp")
    assert off.exit_code == 0, off.output
    assert "member 3, deadlines-ahead: email, email instead" in off.stdout
    assert firm.execute(
        "SELECT count(*) FROM litigation.notification_preferences WHERE whatsapp"
    ).fetchone() == (0,)


def test_the_summary_shows_as_it_goes_when_whatsapp_was_chosen_for_it(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    """A choice of WhatsApp only, kept from before the summary could not be chosen so: the
    summary goes by email instead (or not at all, with no email instead), and prefs show
    says that, not WhatsApp."""
    firm.execute(
        "INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, email,"
        " whatsapp, email_instead) VALUES (1, 3, 'deadlines-ahead', false, true, true),"
        " (1, 2, 'deadlines-ahead', false, true, false)"
    )
    shown = {}
    for member in ("3", "2"):
        rows = as_json(gstjobs("prefs", "show", "--tenant", "1", member, "--format", "json"))
        shown[member] = kinds_of(rows)["deadlines-ahead"]
    assert (shown["3"]["email"], shown["3"]["whatsapp"]) == (True, False)
    assert (shown["2"]["email"], shown["2"]["whatsapp"]) == (False, False)


def test_digest_times_as_the_operator_sets_them(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    """A member's own time and days over the firm's; 'firm' gives the firm's back; audited."""
    done = gstjobs(
        "prefs", "set", "--tenant", "1", "3", "--digest-at", "18:30", "--digest-days", "mon-fri",
        "--reason", "evening digest",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "member 3: digest at 18:30 (member's) on mon,tue,wed,thu,fri (member's)" in done.stdout
    done = gstjobs("prefs", "set", "--tenant", "1", "firm", "--digest-days", "1,3,5")
    assert "the firm: digest at 08:00 (firm's) on mon,wed,fri (firm's)" in done.stdout, done.output
    aarav = as_json(gstjobs("prefs", "show", "--tenant", "1", "3", "--format", "json"))[0]
    rohan = as_json(gstjobs("prefs", "show", "--tenant", "1", "2", "--format", "json"))[0]
    assert (aarav["digest_at"], aarav["digest_days"]) == ("18:30", "1,2,3,4,5")
    assert (rohan["digest_at"], rohan["digest_days"]) == ("08:00", "1,3,5")
    # only the days back to the firm's: his time stays his
    done = gstjobs("prefs", "set", "--tenant", "1", "3", "--digest-days", "firm")
    assert "digest at 18:30 (member's) on mon,wed,fri (firm's)" in done.stdout, done.output
    assert firm.execute(
        "SELECT digest_at::text, digest_days FROM litigation.members WHERE id = 3"
    ).fetchone() == ("18:30:00", None)
    trail = audit(firm)
    assert [a[1] for a in trail] == ["digest-time.set"] * 3
    assert trail[0][3] == "evening digest"
    assert trail[0][2]["old"] == {
        "digest_at": "08:00:00",
        "digest_days": [1, 2, 3, 4, 5, 6, 7],
        "digest_at_by": "firm",
        "digest_days_by": "firm",
    }
    assert trail[2][2]["new"]["digest_days"] == [1, 3, 5]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("show", "--tenant", "1", "6"), "firm 1 has no member 6"),  # firm 2's member
        (("show", "--tenant", "9"), "no firm 9"),
        (("show", "--tenant", "1", "aarav"), "MEMBER is a member's id or 'firm'"),
        (
            ("set", "--tenant", "1", "6", "--kind", "overdue", "--no-email"),
            "firm 1 has no member 6",
        ),
        (("set", "--tenant", "9", "firm", "--kind", "overdue", "--no-email"), "no firm 9"),
        (
            ("set", "--tenant", "1", "3", "--kind", "marketing", "--email"),
            "no kind of notification",
        ),
        (("set", "--tenant", "1", "3", "--kind", "overdue"), "say what to set"),
        (("set", "--tenant", "1", "3", "--no-email"), "name the kinds"),
        (("set", "--tenant", "1", "3"), "nothing to set"),
        (("set", "--tenant", "1", "3", "--kind", "overdue", "--reset", "--email"), "--reset"),
        (("set", "--tenant", "1", "3", "--quiet", "25:00-08:00"), "--quiet is HH:MM-HH:MM"),
        (("set", "--tenant", "1", "3", "--quiet", "9pm-8am"), "--quiet is HH:MM-HH:MM"),
        (("set", "--tenant", "1", "firm", "--quiet", "firm"), "--quiet firm is for a member"),
        (("set", "--tenant", "1", "3", "--digest-at", "24:00"), "--digest-at is a time of day"),
        (("set", "--tenant", "1", "3", "--digest-at", "7.30"), "--digest-at is a time of day"),
        (("set", "--tenant", "1", "3", "--digest-days", "0,1"), "--digest-days is 'daily'"),
        (("set", "--tenant", "1", "3", "--digest-days", "mon-xyz"), "--digest-days is 'daily'"),
        (("set", "--tenant", "1", "3", "--digest-days", "fri-mon"), "runs backwards"),
        (("set", "--tenant", "1", "firm", "--digest-at", "firm"), "is for a member"),
        (
            ("set", "--tenant", "1", "3", "--digest-at", "07:00", "--digest-days", "8"),
            "--digest-days is 'daily'",
        ),
        # checked before anything is changed
        (
            ("set", "--tenant", "1", "3", "--kind", "overdue", "--no-email", "--quiet", "x"),
            "--quiet is HH:MM-HH:MM",
        ),
        (
            (
                "set",
                "--tenant",
                "1",
                "3",
                "--kind",
                "overdue",
                "--no-email",
                "--reason",
                "x" * 1001,
            ),
            "at most 1000",
        ),
        (
            ("set", "--tenant", "1", "3", "--kind", "deadlines-ahead", "--whatsapp"),
            "deadlines-ahead does not go by WhatsApp",
        ),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    gstjobs: Invoke, firm: psycopg.Connection[Any], args: tuple[str, ...], says: str
) -> None:
    refused = gstjobs("prefs", *args)
    assert refused.exit_code == 2, refused.output
    assert says in refused.output
    assert audit(firm) == []
    assert firm.execute("SELECT count(*) FROM litigation.notification_preferences").fetchone() == (
        0,
    )
    assert firm.execute(
        "SELECT count(*) FROM litigation.members WHERE quiet_from IS NOT NULL"
        " OR digest_at IS NOT NULL OR digest_days IS NOT NULL"
    ).fetchone() == (0,)


def test_the_functions_refuse_what_the_command_would_not_send(
    operator: psycopg.Connection[Any], firm: psycopg.Connection[Any]
) -> None:
    """The operator's functions, called directly: a choice is an object of booleans, quiet
    hours two times (a member's: or neither)."""
    for choice in ('{"email": "yes"}', '{"sms": true}', "{}", "[]", '"email"'):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="a choice is a JSON object"):
            operator.execute(
                "SELECT gstjobs.set_notification_choice(1, 3, 'overdue', %s::jsonb)", (choice,)
            )
    for member in (3, None):  # a member's choice, the firm's
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="does not go by WhatsApp"):
            operator.execute(
                "SELECT gstjobs.set_notification_choice(1, %s, 'deadlines-ahead',"
                """ '{"email": false, "whatsapp": true}')""",
                (member,),
            )
    for quiet in (("21:00", None), (None, None)):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="quiet hours are two times"):
            operator.execute("SELECT gstjobs.set_quiet_hours(1, NULL, %s, %s)", quiet)
    for times in (
        "[]",
        "{}",
        '"07:30"',
        '{"digest_hour": 7}',
        '{"digest_at": 730}',
        '{"digest_days": 1}',
        '{"digest_days": [0]}',
        '{"digest_days": [8]}',
        '{"digest_days": [1.5]}',
        '{"digest_days": ["1"]}',
        '{"digest_days": [1, null]}',
        '{"digest_days": []}',
    ):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="digest"):
            operator.execute("SELECT gstjobs.set_digest_time(1, 3, %s::jsonb)", (times,))
    for times in ('{"digest_at": null}', '{"digest_days": null}'):  # the firm's are values
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not null"):
            operator.execute("SELECT gstjobs.set_digest_time(1, NULL, %s::jsonb)", (times,))
    with pytest.raises(psycopg.errors.DatetimeFieldOverflow):
        operator.execute("""SELECT gstjobs.set_digest_time(1, 3, '{"digest_at": "25:00"}')""")
    with pytest.raises(psycopg.errors.UndefinedObject, match="firm 1 has no member 6"):
        operator.execute("""SELECT gstjobs.set_digest_time(1, 6, '{"digest_at": "07:00"}')""")
    # nor can an operator write the tables themselves
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        operator.execute(
            "INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, email,"
            " whatsapp) VALUES (1, 3, 'overdue', true, true)"
        )
    assert audit(firm) == []

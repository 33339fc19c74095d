"""deadlines, events, rules and calendar through Click, as an operator: every change audited,
every refusal exit 2 with nothing changed, and the dates those changes give."""

from typing import Any

import psycopg
import pytest

from tests.cli.conftest import Invoke, as_json
from tests.conftest import as_operator


def audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, reason FROM gstjobs.audit_log ORDER BY id"
    ).fetchall()


def test_an_operator_records_corrects_and_removes_an_event(
    gstjobs: Invoke, firm: psycopg.Connection[Any], operator_role: str
) -> None:
    recorded = as_json(
        gstjobs(
            "events", "add", "--tenant", "1", "--case", "1", "order_communicated",
            "2026-08-31", "--document", "DIN 2026083100", "--reason", "served by email",
            "--format", "json",
        )
    )  # fmt: skip
    event = recorded["id"]
    by_rule = {d["rule"]: d for d in recorded["deadlines"]}
    assert set(by_rule) == {"appeal-107", "payment-78"}
    assert (by_rule["appeal-107"]["safe_date"], by_rule["appeal-107"]["last_day"]) == (
        "2026-11-28",
        "2026-11-30",
    )
    # the table form: the event, then its deadlines
    table = gstjobs("events", "list", "--tenant", "1").stdout
    assert "order_communicated" in table and "2026-08-31" in table

    listed = as_json(gstjobs("deadlines", "--tenant", "1", "--format", "json"))
    assert [(d["rule"], d["safe_date"], d["last_day"], d["condonable_until"]) for d in listed] == [
        ("appeal-107", "2026-11-28", "2026-11-30", "2026-12-30"),
        ("payment-78", "2026-11-28", "2026-11-30", None),
    ]
    assert listed[0]["basis"].startswith("Appeal to Appellate Authority, section 107(1)")
    assert listed[0]["case_reference"] == "SCN/73/2025-26/00042"

    corrected = as_json(
        gstjobs(
            "events", "correct", "--tenant", "1", str(event), "--date", "2026-09-10",
            "--reason", "served later", "--format", "json",
        )
    )  # fmt: skip
    assert corrected["event_on"] == "2026-09-10"
    assert {d["rule"]: d["last_day"] for d in corrected["deadlines"]} == {
        "appeal-107": "2026-12-10",
        "payment-78": "2026-12-10",
    }
    removed = gstjobs("events", "remove", "--tenant", "1", str(event), "--reason", "wrong case")
    assert removed.exit_code == 0 and "event" in removed.stdout
    assert as_json(gstjobs("deadlines", "--tenant", "1", "--format", "json")) == []
    assert [(a, r) for _, a, r in audit(firm)] == [
        ("event.add", "served by email"),
        ("event.correct", "served later"),
        ("event.remove", "wrong case"),
    ]
    assert {actor for actor, _, _ in audit(firm)} == {operator_role}


def test_deadlines_are_filtered_by_firm_case_and_days_ahead(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    today = firm.execute("SELECT (now() AT TIME ZONE 'Asia/Kolkata')::date").fetchone()
    assert today is not None
    soon, later = today[0], today[0].replace(year=today[0].year + 1)
    firm.execute(
        "INSERT INTO litigation.deadlines (tenant_id, case_id, kind, due_on, owner_id) VALUES"
        " (1, 1, 'File written submissions', %s, 3), (1, 2, 'Pay pre-deposit', %s, 2),"
        " (2, 3, 'London desk filing', %s, 6)",
        (soon, later, soon),
    )
    firm.execute("UPDATE litigation.deadlines SET status = 'met' WHERE kind = 'Pay pre-deposit'")

    def kinds(*args: str) -> list[str]:
        return [d["deadline"] for d in as_json(gstjobs("deadlines", *args, "--format", "json"))]

    assert kinds() == ["File written submissions", "London desk filing"]
    assert kinds("--tenant", "2") == ["London desk filing"]
    assert kinds("--case", "1") == ["File written submissions"]
    assert kinds("--tenant", "1", "--all") == ["File written submissions", "Pay pre-deposit"]
    assert kinds("--tenant", "1", "--all", "--due-within", "30") == ["File written submissions"]
    # a manual deadline is its own last day
    [manual] = as_json(gstjobs("deadlines", "--case", "1", "--format", "json"))
    assert (manual["origin"], manual["last_day"], manual["rule"]) == ("manual", str(soon), None)


def test_bad_events_are_refused_and_change_nothing(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    cases = [
        (("events", "add", "--tenant", "1", "--case", "99", "order_issued", "2026-01-05"),
         "firm 1 has no case 99"),
        (("events", "add", "--tenant", "2", "--case", "1", "order_issued", "2026-01-05"),
         "firm 2 has no case 1"),
        (("events", "add", "--tenant", "1", "--case", "1", "order_lost", "2026-01-05"),
         "unknown event kind 'order_lost'; kinds are: appellate_order_communicated"),
        (("events", "add", "--tenant", "1", "--case", "1", "order_issued", "2016-01-05"),
         "case_events_event_on_check"),
        (("events", "add", "--tenant", "1", "--case", "1", "scn_73_issued", "2026-01-05",
          "--financial-year", "2026-2027"), "financial_year"),
        (("events", "correct", "--tenant", "1", "5"), "nothing to correct"),
        (("events", "correct", "--tenant", "1", "5", "--date", "2026-01-01"),
         "firm 1 has no event 5"),
        (("events", "remove", "--tenant", "1", "5", "--reason", "x"), "firm 1 has no event 5"),
        (("events", "add", "--tenant", "1", "--case", "1", "order_issued", "5 Jan 2026"),
         "Invalid value for 'DATE'"),
    ]  # fmt: skip
    for args, message in cases:
        result = gstjobs(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    assert firm.execute("SELECT count(*) FROM litigation.case_events").fetchone() == (0,)
    assert audit(firm) == []


def test_rules_are_listed_shown_and_extended_by_a_notification(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    keys = [r["key"] for r in as_json(gstjobs("rules", "list", "--format", "json"))]
    assert "appeal-112" in keys and "notice-limit-73" in keys and keys == sorted(keys)
    shown = as_json(gstjobs("rules", "show", "appeal-112", "--format", "json"))
    assert [n["notification"] for n in shown["notified_dates"]] == ["S.O. 4220(E)"]
    assert "operative_words" in shown["notified_dates"][0]
    unknown = gstjobs("rules", "show", "appeal-999")
    assert unknown.exit_code == 2 and "rules are: appeal-107" in unknown.stderr

    event = as_json(
        gstjobs(
            "events", "add", "--tenant", "1", "--case", "2", "appellate_order_communicated",
            "2026-04-20", "--format", "json",
        )
    )["id"]  # fmt: skip
    notification = (
        "rules", "add-notification", "appeal-112", "--notification", "S.O. 9999(E)",
        "--notified-on", "2026-06-30", "--section", "112(1)", "--last-day", "2026-07-31",
        "--for-events-before", "2026-05-01", "--words", "the 31st day of July, 2026, ...",
        "--source", "Gazette of India (test)", "--reason", "counsel's note",
    )  # fmt: skip
    added = gstjobs(*notification)
    assert added.exit_code == 0, added.output
    assert "1 deadline(s) recomputed" in added.stdout
    [appeal] = as_json(gstjobs("deadlines", "--case", "2", "--format", "json"))
    assert (appeal["last_day"], appeal["notified_by"]) == ("2026-07-31", "S.O. 9999(E)")
    assert appeal["event"] == "appellate_order_communicated" and event
    # the same again: refused as a duplicate, nothing changes
    again = gstjobs(*notification)
    assert again.exit_code == 2 and "already has S.O. 9999(E)" in again.stderr
    other = gstjobs("rules", "add-notification", "appeal-999", *notification[3:])
    assert other.exit_code == 2 and "unknown rule 'appeal-999'" in other.stderr
    assert firm.execute(
        "SELECT count(*) FROM gstjobs.notified_dates WHERE notification = 'S.O. 9999(E)'"
    ).fetchone() == (1,)
    bad = gstjobs(*notification[:-2], "--financial-year", "2026")
    assert bad.exit_code == 2 and "notified_dates_financial_year_check" in bad.stderr
    assert [a for _, a, _ in audit(firm)][-1] == "notified-date.add"


def test_a_calendar_is_loaded_added_to_and_moves_the_last_day(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    assert "only Sundays are closed" in gstjobs("calendar", "list", "--tenant", "1").stdout
    # an appeal to the Tribunal whose 3 months end on Fri 2 Oct 2026, Gandhi Jayanti
    gstjobs(
        "events", "add", "--tenant", "1", "--case", "2", "appellate_order_communicated",
        "2026-07-02",
    )  # fmt: skip
    [before] = as_json(gstjobs("deadlines", "--case", "2", "--format", "json"))
    assert before["last_day"] == "2026-10-02"

    loaded = gstjobs("calendar", "load", "--tenant", "1", "--forum", "tribunal", "--year", "2026")
    assert loaded.exit_code == 0, loaded.output
    assert "DoPT Office Memorandum dated 3 July 2025" in loaded.stdout
    assert "17 holiday(s) added" in loaded.stdout
    # Fri 2 Oct closed, then Sat 3 Oct open: the last day moves one day, the safe date does not
    [after] = as_json(gstjobs("deadlines", "--case", "2", "--format", "json"))
    assert (after["last_day"], after["safe_date"]) == ("2026-10-03", before["safe_date"])
    again = gstjobs("calendar", "load", "--tenant", "1", "--forum", "tribunal", "--year", "2026")
    assert "0 holiday(s) added" in again.stdout and "17 already there" in again.stdout

    added = gstjobs(
        "calendar", "add", "--tenant", "1", "--forum", "tribunal", "2026-10-03", "Bench closed"
    )
    assert "1 holiday(s) added" in added.stdout
    [moved] = as_json(gstjobs("deadlines", "--case", "2", "--format", "json"))
    assert moved["last_day"] == "2026-10-05"  # Sat closed by the firm, Sun always
    rows = as_json(gstjobs("calendar", "list", "--tenant", "1", "--format", "json"))
    assert len(rows) == 18 and {r["forum"] for r in rows} == {"tribunal"}

    # the Tribunal's bench closed on Saturdays too: Sat 3 Oct was already closed, so nothing
    # moves further; back to Sundays only and the holiday of 3 Oct moves it again
    weekdays = gstjobs("calendar", "weekdays", "--tenant", "1", "--forum", "tribunal", "6,7")
    assert "closed on weekdays [6, 7] (was [7])" in weekdays.stdout, weekdays.output
    gstjobs("calendar", "remove", "--tenant", "1", "--forum", "tribunal", "2026-10-03")
    [saturday] = as_json(gstjobs("deadlines", "--case", "2", "--format", "json"))
    assert saturday["last_day"] == "2026-10-05"  # Fri holiday, Sat and Sun closed
    gstjobs("calendar", "weekdays", "--tenant", "1", "--forum", "tribunal", "7")
    [sunday_only] = as_json(gstjobs("deadlines", "--case", "2", "--format", "json"))
    assert sunday_only["last_day"] == "2026-10-03"
    for bad in ("1,2,3,4,5,6,7", "8", "Sat"):
        refused = gstjobs("calendar", "weekdays", "--tenant", "1", "--forum", "tribunal", bad)
        assert refused.exit_code == 2, (bad, refused.output)

    removed = gstjobs(
        "calendar", "remove", "--tenant", "1", "--forum", "tribunal", "2026-10-02", "2026-10-03"
    )
    assert "1 holiday(s) removed" in removed.stdout
    [back] = as_json(gstjobs("deadlines", "--case", "2", "--format", "json"))
    assert back["last_day"] == "2026-10-02"

    for args, message in [
        (("calendar", "load", "--tenant", "1", "--year", "1999"), "no holidays shipped for 1999"),
        (("calendar", "remove", "--tenant", "1", "2026-10-02"),
         "firm 1 has no calendar for every forum"),
        (("calendar", "add", "--tenant", "9", "2026-10-02", "x"), "no firm 9"),
        (("calendar", "add", "--tenant", "1", "--forum", "moon", "2026-10-02", "x"),
         "Invalid value for '--forum'"),
    ]:  # fmt: skip
        result = gstjobs(*args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
    assert [a for _, a, _ in audit(firm)] == [
        "event.add", "calendar.add", "calendar.add", "calendar.add", "calendar.weekdays",
        "calendar.remove", "calendar.weekdays", "calendar.remove",
    ]  # fmt: skip


def test_an_event_cannot_be_moved_to_another_firm(
    gstjobs: Invoke, firm: psycopg.Connection[Any], db: str
) -> None:
    event = as_json(
        gstjobs(
            "events", "add", "--tenant", "1", "--case", "1", "order_issued", "2026-01-05",
            "--format", "json",
        )
    )["id"]  # fmt: skip
    # case 3 is the London desk's (firm 2)
    moved = gstjobs("events", "correct", "--tenant", "1", str(event), "--case", "3")
    assert moved.exit_code == 2 and "firm 1 has no case 3" in moved.stderr
    # nor as the other firm: it has no such event
    other = gstjobs("events", "correct", "--tenant", "2", str(event), "--date", "2026-01-06")
    assert other.exit_code == 2 and f"firm 2 has no event {event}" in other.stderr
    # the firm and the computed columns are not the operator's to write
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot be corrected"):
        firm.execute("SELECT gstjobs.correct_event(1, %s, '{\"tenant_id\": 2}')", (event,))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot be corrected"):
        firm.execute("SELECT gstjobs.correct_event(1, %s, '{\"unresolved\": []}')", (event,))
    assert firm.execute(
        "SELECT tenant_id, case_id, event_on::text FROM litigation.case_events"
    ).fetchall() == [(1, 1, "2026-01-05")]
    # and the operator cannot write the firm's tables but through these functions
    with (
        psycopg.connect(as_operator(db)) as operator,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        operator.execute("DELETE FROM litigation.case_events")

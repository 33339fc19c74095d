"""Digests (docs/DELIVERY.md): what a member takes in a digest is gathered into one email at
their digest time, grouped by case; each item in exactly one digest, through overlaps and a
dispatcher killed while it gathers them."""

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.conftest import wait_until
from tests.integration.conftest import as_firm, at, notifications, run
from tests.integration.test_hearing_reminders import add_hearing
from tests.integration.test_sla_check import add_task
from tests.reliability.tripwire import TRIP_LOCK, TRIPWIRE


@pytest.fixture
def digesting(firm: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Aarav (member 3) takes SLA breaches and hearing reminders in a digest, at 18:00 on
    weekdays; two breaches on two cases on Friday 13 Nov 2026."""
    for kind in ("sla-breach", "hearing-reminder"):
        as_firm(
            firm,
            1,
            "INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, email,"
            " whatsapp, digest) VALUES (1, 3, %s, true, true, true)",
            kind,
        )
    as_firm(
        firm,
        1,
        "UPDATE litigation.members SET digest_at = '18:00', digest_days = '{1,2,3,4,5}'"
        " WHERE id = 3",
    )
    firm.execute("UPDATE litigation.cases SET owner_id = 3 WHERE tenant_id = 1")
    add_task(firm, 1, sla_due_at=at("2026-11-13 10:00"))
    add_task(firm, 2, sla_due_at=at("2026-11-13 11:00"), case_id=2)
    run(firm, "sla-check", at("2026-11-13 10:05"))
    run(firm, "sla-check", at("2026-11-13 11:05"))
    return firm


def by_channel(conn: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in notifications(conn):
        found.setdefault(row["channel"], []).append(row)
    return found


def test_items_wait_for_the_digest_time_and_go_in_one_email_by_case(
    digesting: psycopg.Connection[Any],
) -> None:
    items = by_channel(digesting)
    assert list(items) == ["digest"]  # no email or WhatsApp of their own
    assert {r["next_attempt_at"] for r in items["digest"]} == {at("2026-11-13 18:00")}
    assert {r["recipient"] for r in items["digest"]} == {"aarav@mehta.example.in"}

    assert "digests" not in run(digesting, "dispatch-notifications", at("2026-11-13 17:59"))
    assert {r["status"] for r in notifications(digesting)} == {"pending"}

    counts = run(digesting, "dispatch-notifications", at("2026-11-13 18:00"))
    assert (counts["digests"], counts["digested"]) == (1, 2)
    [email] = by_channel(digesting)["email"]
    assert (email["kind"], email["recipient"], email["member_id"]) == (
        "digest",
        "aarav@mehta.example.in",
        3,
    )
    assert email["subject"] == "Your digest: 2 notification(s)"
    body = email["body"]
    assert body.startswith("Dear Aarav Shah,\n\n2 notification(s) since your last digest")
    first, second = body.index("APL/107/2025-26/00007"), body.index("SCN/73/2025-26/00042")
    assert first < second  # by case
    assert "SLA breached: Draft reply to SCN (DRC-06)" in body
    assert "passed its SLA at" in body and body.count("Dear ") == 1
    assert body.endswith("Mehta & Associates, Mumbai, sent by gstjobs")
    digested = [r for r in notifications(digesting) if r["channel"] == "digest"]
    assert {(r["status"], r["digest_id"]) for r in digested} == {("digested", email["id"])}

    # nothing twice: the next run finds nothing to gather
    assert "digests" not in run(digesting, "dispatch-notifications", at("2026-11-13 18:01"))
    assert len(by_channel(digesting)["email"]) == 1


def test_the_next_digest_is_on_the_next_chosen_weekday(digesting: psycopg.Connection[Any]) -> None:
    """An item after Friday's 18:00 waits for Monday's (weekdays only)."""
    add_task(digesting, 3, sla_due_at=at("2026-11-13 19:00"))
    run(digesting, "sla-check", at("2026-11-13 19:05"))
    newest = max(notifications(digesting), key=lambda r: r["id"])
    assert (newest["channel"], newest["next_attempt_at"]) == ("digest", at("2026-11-16 18:00"))


def test_what_cannot_wait_is_never_gathered(digesting: psycopg.Connection[Any]) -> None:
    """A hearing tomorrow goes at once on his channels; the one in a week waits for the digest."""
    add_hearing(digesting, 1, at("2026-11-14 10:30"))
    add_hearing(digesting, 2, at("2026-11-20 10:30"))
    run(digesting, "hearing-reminders", at("2026-11-13 08:05"))
    reminders = {
        (r["dedupe_key"].split(":")[4], r["channel"])
        for r in notifications(digesting, "hearing-reminder")
    }
    assert reminders == {("T-1", "email"), ("T-1", "whatsapp"), ("T-7", "digest")}


@pytest.mark.parametrize(
    ("zone", "at_", "days", "given", "expected"),
    [
        ("Asia/Kolkata", "18:00", "{1,2,3,4,5,6,7}", "2026-11-13 18:00", "2026-11-13 18:00"),
        ("Asia/Kolkata", "18:00", "{1,2,3,4,5,6,7}", "2026-11-13 18:01", "2026-11-14 18:00"),
        ("Asia/Kolkata", "08:00", "{1}", "2026-11-13 12:00", "2026-11-16 08:00"),  # Mondays
        # New York's clock skips 02:00-03:00 on 14 Mar 2027: a 02:30 digest goes at 03:30 EDT
        ("America/New_York", "02:30", "{7}", "2027-03-13 12:00", "2027-03-14 03:30"),
        ("Asia/Kathmandu", "07:45", "{1,2,3,4,5,6,7}", "2026-11-13 23:00", "2026-11-14 07:45"),
    ],
)
def test_the_next_digest_time_in_the_zone(
    conn: psycopg.Connection[Any], zone: str, at_: str, days: str, given: str, expected: str
) -> None:
    tz = ZoneInfo(zone)
    found = conn.execute(
        "SELECT gstjobs.next_digest_at(%s, %s, %s::smallint[], %s)",
        (zone, at_, days, at(given, tz)),
    ).fetchone()
    assert found == (at(expected, tz),)


@contextlib.contextmanager
def gathering(db: str, conn: psycopg.Connection[Any], as_of: datetime) -> Iterator[int]:
    """A dispatch run stopped inside its gathering statement, the items due locked and no digest
    written yet, until the block ends (or the test kills it); yields its backend's pid."""
    conn.execute(TRIPWIRE.encode())
    conn.execute(
        "CREATE TRIGGER tripwire BEFORE INSERT ON gstjobs.notifications FOR EACH ROW"
        " WHEN (NEW.kind = 'digest') EXECUTE FUNCTION tripwire.trip('1')"
    )
    holder = psycopg.connect(db, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (TRIP_LOCK,))
    dispatcher = psycopg.connect(db, autocommit=True)
    pid = dispatcher.info.backend_pid

    def dispatch() -> None:
        with contextlib.suppress(psycopg.Error):
            dispatcher.execute(
                "CALL gstjobs.run_job('dispatch-notifications', as_of => %s)", (as_of,)
            )

    thread = threading.Thread(target=dispatch)
    thread.start()
    try:
        wait_until(
            db, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'advisory'", (pid,)
        )
        yield pid
    finally:
        holder.close()  # the run goes on, if it is still there
        thread.join(30)
        dispatcher.close()
        conn.execute("DROP TRIGGER tripwire ON gstjobs.notifications")
        conn.execute("DROP SCHEMA tripwire CASCADE")


def test_a_dispatcher_killed_while_gathering_leaves_every_item_for_one_digest(
    db: str, digesting: psycopg.Connection[Any]
) -> None:
    """Killed as it writes the digest: nothing of the statement stays (the items wait); the
    next run makes the one digest."""
    with gathering(db, digesting, at("2026-11-13 18:00")) as pid:
        digesting.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert "email" not in by_channel(digesting)
    assert {r["status"] for r in notifications(digesting)} == {"pending"}

    counts = run(digesting, "dispatch-notifications", at("2026-11-13 18:02"))
    assert (counts["digests"], counts["digested"]) == (1, 2)
    assert len(by_channel(digesting)["email"]) == 1


def test_an_opt_out_while_a_digest_is_gathered(db: str, digesting: psycopg.Connection[Any]) -> None:
    """Aarav replies STOP to WhatsApp while his digest is being gathered: the opt-out takes effect
    at once (it waits for nothing the digest holds): the WhatsApp reminder waiting for him ends
    suppressed and goes by email instead; the digest, an email, goes with both items."""
    # a hearing tomorrow: a reminder by WhatsApp (and one by email, removed here so that the
    # email instead of the WhatsApp one is seen), both still unsent at 18:00
    add_hearing(digesting, 1, at("2026-11-14 10:30"))
    run(digesting, "hearing-reminders", at("2026-11-13 08:05"))
    digesting.execute(
        "DELETE FROM gstjobs.notifications WHERE kind = 'hearing-reminder' AND channel = 'email'"
    )
    # waiting for a lock the gathering holds would be the fault: an error, not a hung test
    digesting.execute("SET lock_timeout = '10s'")
    with gathering(db, digesting, at("2026-11-13 18:00")):
        as_firm(
            digesting,
            1,
            "UPDATE litigation.whatsapp_consents SET opted_out_at = '2026-11-13 18:00+05:30',"
            " opted_out_how = 'replied STOP' WHERE member_id = 3",
        )
        reminder = {r["channel"]: r for r in notifications(digesting, "hearing-reminder")}
        assert reminder["whatsapp"]["status"] == "suppressed"
        assert reminder["email"]["status"] == "pending"
        assert {r["status"] for r in by_channel(digesting)["digest"]} == {"pending"}
    runs = digesting.execute(
        "SELECT status, counts ->> 'digested' FROM gstjobs.runs"
        " WHERE job = 'dispatch-notifications' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert runs == ("succeeded", "2")
    [digest] = [r for r in notifications(digesting, "digest")]
    assert digest["channel"] == "email" and digest["subject"] == "Your digest: 2 notification(s)"
    assert {r["status"] for r in by_channel(digesting)["digest"]} == {"digested"}
    assert [r["status"] for r in by_channel(digesting)["whatsapp"]] == ["suppressed"]


def test_a_digest_too_long_for_one_email_goes_in_parts_never_cut(
    digesting: psycopg.Connection[Any],
) -> None:
    """Thirty items of 1,500 characters each (a firm's long task notes): three emails, "part k of
    3", every item whole in exactly one of them, none cut."""
    digesting.execute("DELETE FROM gstjobs.notifications")
    digesting.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, member_id,"
        " subject, body, template, urgency, dedupe_key, next_attempt_at)"
        " SELECT 1, 'sla-breach', 'digest', 'aarav@mehta.example.in', 3, 'item ' || i,"
        "  'Dear Aarav Shah,' || chr(10) || chr(10) || 'marker-' || i || '-start '"
        "   || repeat('word ', 290) || 'marker-' || i || '-end' || chr(10) || chr(10)"
        "   || 'Mehta & Associates, Mumbai, sent by gstjobs',"
        "  jsonb_build_object('name', 'sla-breach', 'params',"
        "   jsonb_build_object('case_reference', 'SCN/' || (i %% 3))),"
        "  5, 'long:' || i, %s FROM generate_series(1, 30) AS i",
        (at("2026-11-13 18:00"),),
    )
    counts = run(digesting, "dispatch-notifications", at("2026-11-13 18:00"))
    assert (counts["digests"], counts["digested"]) == (3, 30)
    parts = sorted(by_channel(digesting)["email"], key=lambda r: r["id"])
    assert [r["subject"] for r in parts] == [
        f"Your digest: {r['template']['params']['items']} notification(s) (part {k} of 3)"
        for k, r in enumerate(parts, 1)
    ]
    assert sum(r["template"]["params"]["items"] for r in parts) == 30
    carried: dict[int, int] = {}
    for part in parts:
        assert len(part["body"]) <= 20000 and "…" not in part["body"]
        assert part["body"].endswith("Mehta & Associates, Mumbai, sent by gstjobs")
        for i in range(1, 31):
            if f"marker-{i}-start " in part["body"]:
                assert f"marker-{i}-end" in part["body"]  # whole
                assert i not in carried  # once
                carried[i] = part["id"]
    assert sorted(carried) == list(range(1, 31))
    # each item marked with the email that carries it
    items = {int(r["subject"].split()[1]): r["digest_id"] for r in by_channel(digesting)["digest"]}
    assert items == carried


def test_the_firm_sets_digest_times_of_its_own_only(firm: psycopg.Connection[Any]) -> None:
    for statement in (
        "UPDATE litigation.members SET digest_days = '{0}' WHERE id = 3",
        "UPDATE litigation.members SET digest_days = '{}' WHERE id = 3",
        "UPDATE litigation.tenants SET digest_days = '{8}' WHERE id = 1",
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            as_firm(firm, 1, statement)
    assert (
        as_firm(firm, 1, "UPDATE litigation.tenants SET digest_at = '07:00' WHERE id = 2").rowcount
        == 0
    )


# ------------------------------------------------------------------ the weekly summary -----
def add_deadline(
    conn: psycopg.Connection[Any], deadline_id: int, due_on: str, owner: int = 3, **more: Any
) -> None:
    values = {"tenant_id": 1, "case_id": 1, "status": "open", **more}
    conn.execute(
        "INSERT INTO litigation.deadlines (tenant_id, id, case_id, kind, due_on, status, owner_id)"
        " VALUES (%(tenant_id)s, %(id)s, %(case_id)s, %(kind)s, %(due_on)s, %(status)s, %(owner)s)",
        {"id": deadline_id, "due_on": due_on, "owner": owner, "kind": f"Reply {deadline_id}"}
        | values,
    )


@pytest.fixture
def deadlines(firm: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Deadlines around Monday 16 Nov 2026: Aarav's (member 3) on its first and 13th day and
    one a day past the 14; one met; Rohan's (member 2) on case 2; the London desk's."""
    add_deadline(firm, 1, "2026-11-29")
    add_deadline(firm, 2, "2026-11-16")
    add_deadline(firm, 3, "2026-11-30")
    add_deadline(firm, 4, "2026-11-20", status="met")
    add_deadline(firm, 5, "2026-11-18", owner=2, case_id=2)
    add_deadline(firm, 6, "2026-11-17", owner=6, case_id=3, tenant_id=2)
    return firm


def test_the_weekly_summary_lists_each_members_deadlines_of_the_next_14_days(
    deadlines: psycopg.Connection[Any],
) -> None:
    """Monday's deadline-alerts slot: one email each, by due date; a partner's lists the firm's;
    never by WhatsApp (Aarav and Priya have it), once a week."""
    counts = run(deadlines, "deadline-alerts", at("2026-11-16 09:05"))
    assert counts["summaries"] == 3
    summaries = {r["member_id"]: r for r in notifications(deadlines, "deadlines-ahead")}
    assert {(m, r["channel"]) for m, r in summaries.items()} == {
        (1, "email"),
        (2, "email"),
        (3, "email"),
    }
    aarav = summaries[3]
    assert aarav["subject"] == "Deadlines in the next 14 days: 2"
    assert aarav["urgency"] == 5
    assert (
        "Your open deadlines due from Mon 16 Nov 2026 to Sun 29 Nov 2026, 2 in all, by due date:"
        "\n\n  Mon 16 Nov  Reply 2: SCN/73/2025-26/00042 (Balaji Steel Traders Pvt Ltd,"
        " section 73), owner Aarav Shah\n  Sun 29 Nov  Reply 1:" in aarav["body"]
    )
    assert "Reply 3" not in aarav["body"] and "Reply 4" not in aarav["body"]
    assert "Reply 5" not in aarav["body"]
    priya = summaries[1]["body"]
    assert "The firm's open deadlines due from Mon 16 Nov 2026" in priya and "3 in all" in priya
    assert priya.index("Reply 2") < priya.index("Reply 5") < priya.index("Reply 1")
    assert "owner Rohan Iyer" in priya and "Reply 6" not in priya
    assert "Reply 5: APL/107/2025-26/00007" in summaries[2]["body"]

    # once: the slot is taken; Tuesday is not the summary's day
    assert run(deadlines, "deadline-alerts", at("2026-11-16 09:35"))["summaries"] == 0
    assert run(deadlines, "deadline-alerts", at("2026-11-17 09:05"))["summaries"] == 0
    assert len(notifications(deadlines, "deadlines-ahead")) == 3


def test_the_weekly_summary_in_the_digest_where_chosen(
    deadlines: psycopg.Connection[Any],
) -> None:
    """Aarav chose it for his digest (07:30 daily): it goes in Tuesday's, under the firm."""
    as_firm(
        deadlines,
        1,
        "INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, email,"
        " whatsapp, digest) VALUES (1, 3, 'deadlines-ahead', true, false, true)",
    )
    as_firm(deadlines, 1, "UPDATE litigation.members SET digest_at = '07:30' WHERE id = 3")
    run(deadlines, "deadline-alerts", at("2026-11-16 09:05"))
    [item] = [r for r in notifications(deadlines, "deadlines-ahead") if r["member_id"] == 3]
    assert (item["channel"], item["next_attempt_at"]) == ("digest", at("2026-11-17 07:30"))
    counts = run(deadlines, "dispatch-notifications", at("2026-11-17 07:30"))
    assert (counts["digests"], counts["digested"]) == (1, 1)
    [digest] = notifications(deadlines, "digest")
    assert (
        "The firm\n  * Deadlines in the next 14 days: 2\n    Your open deadlines"
        in (digest["body"])
    )


def test_a_weekly_summary_too_long_for_one_email_goes_in_parts_never_cut(
    deadlines: psycopg.Connection[Any],
) -> None:
    """A large firm's partner: 400 more deadlines of Rohan's in the 14 days, lines of ~150
    characters, make the firm's list ~60,000 characters: it goes in parts of about 18,000
    characters, each line whole in exactly one, in due-date order, each part once."""
    deadlines.execute(
        "INSERT INTO litigation.deadlines (tenant_id, id, case_id, kind, due_on, status, owner_id)"
        " SELECT 1, 100 + i, 2, 'Reply ' || 100 + i || ' to the show cause notice, with"
        " annexures and ledger extracts', date '2026-11-16' + i % 14,"
        " 'open', 2 FROM generate_series(1, 400) AS i"
    )
    counts = run(deadlines, "deadline-alerts", at("2026-11-16 09:05"))
    priya = sorted(
        (r for r in notifications(deadlines, "deadlines-ahead") if r["member_id"] == 1),
        key=lambda r: r["id"],
    )
    total = len(priya)
    assert total >= 3
    # three members summarised; Priya's and Rohan's lists in parts, Aarav's in one
    assert counts["summaries"] == 3
    assert counts["summary_parts"] == 2 * total + 1
    assert [r["subject"] for r in priya] == [
        f"Deadlines in the next 14 days: 403 (part {k} of {total})" for k in range(1, total + 1)
    ]
    lines: list[str] = []
    for k, part in enumerate(priya, 1):
        body = part["body"]
        assert len(body) <= 20000 and "…" not in body
        assert f"403 in all, by due date (part {k} of {total}):" in body
        assert body.endswith("Mehta & Associates, Mumbai, sent by gstjobs")
        lines += [line for line in body.splitlines() if line.startswith("  ")]
    # every deadline's line once, whole, in due-date order across the parts
    replies = [int(line.split("  Reply ")[1].split(":")[0].split()[0]) for line in lines]
    assert sorted(replies) == sorted([1, 2, 5, *range(101, 501)])
    due = [datetime.strptime(" ".join(line.split()[1:3]) + " 2026", "%d %b %Y") for line in lines]
    assert due == sorted(due)
    # once: the same slot again writes no part twice
    run(deadlines, "deadline-alerts", at("2026-11-16 09:35"))
    assert len([r for r in notifications(deadlines, "deadlines-ahead") if r["member_id"] == 1]) == (
        total
    )

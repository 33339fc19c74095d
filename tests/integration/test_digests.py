"""Digests (docs/DELIVERY.md): what a member takes in a digest is gathered into one email at
their digest time, grouped by case; each item in exactly one digest, through overlaps and a
dispatcher killed while it gathers them."""

import contextlib
import threading
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


def test_a_dispatcher_killed_while_gathering_leaves_every_item_for_one_digest(
    db: str, digesting: psycopg.Connection[Any]
) -> None:
    """Killed as it writes the digest: nothing of the statement stays (the items wait); the
    next run makes the one digest."""
    digesting.execute(TRIPWIRE.encode())
    digesting.execute(
        "CREATE TRIGGER tripwire BEFORE INSERT ON gstjobs.notifications FOR EACH ROW"
        " WHEN (NEW.kind = 'digest') EXECUTE FUNCTION tripwire.trip('1')"
    )
    holder = psycopg.connect(db, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (TRIP_LOCK,))
    victim = psycopg.connect(db, autocommit=True)
    pid = victim.info.backend_pid

    def doomed() -> None:
        with contextlib.suppress(psycopg.Error):
            victim.execute(
                "CALL gstjobs.run_job('dispatch-notifications', as_of => %s)",
                (at("2026-11-13 18:00"),),
            )

    thread = threading.Thread(target=doomed)
    thread.start()
    wait_until(
        db, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'advisory'", (pid,)
    )
    digesting.execute("SELECT pg_terminate_backend(%s)", (pid,))
    thread.join(30)
    victim.close()
    holder.close()
    digesting.execute("DROP TRIGGER tripwire ON gstjobs.notifications")
    assert "email" not in by_channel(digesting)
    assert {r["status"] for r in notifications(digesting)} == {"pending"}

    counts = run(digesting, "dispatch-notifications", at("2026-11-13 18:02"))
    assert (counts["digests"], counts["digested"]) == (1, 2)
    assert len(by_channel(digesting)["email"]) == 1


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

"""What a member receives, and when (docs/DELIVERY.md): the channels a firm and a member choose
per kind, what cannot be switched off, email instead of WhatsApp that cannot go, and quiet
hours that hold what can wait."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import errors

from tests.integration.conftest import as_firm, at, notifications, run
from tests.integration.test_hearing_reminders import add_hearing
from tests.integration.test_sla_check import add_task

UTC = ZoneInfo("UTC")


def choose(
    conn: psycopg.Connection[Any],
    kind: str,
    email: bool,
    whatsapp: bool,
    member: int | None = 3,
    **more: bool,
) -> None:
    """Firm 1's application records a choice: a member's own, or (member None) the firm's."""
    columns = {"email": email, "whatsapp": whatsapp, **more}
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    if member is None:
        statement = (
            f"INSERT INTO litigation.notification_defaults (tenant_id, kind, {names})"
            f" VALUES (1, %s, {marks})"
        )
        as_firm(conn, 1, statement, kind, *columns.values())
    else:
        statement = (
            f"INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, {names})"
            f" VALUES (1, %s, %s, {marks})"
        )
        as_firm(conn, 1, statement, member, kind, *columns.values())


def sent_to(conn: psycopg.Connection[Any], step: str, hearing: int = 1) -> set[tuple[int, str]]:
    """(member, channel) of a hearing's reminders of a step (T-7, T-1, T-0)."""
    return {
        (r["member_id"], r["channel"])
        for r in notifications(conn, "hearing-reminder")
        if r["dedupe_key"].split(":")[2:5:2] == [str(hearing), step]
    }


def test_the_firm_chooses_for_its_members_and_a_member_for_themselves(
    firm: psycopg.Connection[Any],
) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    add_hearing(firm, 2, at("2026-11-21 10:30"))
    add_hearing(firm, 3, at("2026-11-22 10:30"))
    # nothing chosen: both channels (Aarav has an address, a phone and an opt-in)
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    assert sent_to(firm, "T-7") == {(3, "email"), (3, "whatsapp")}

    choose(firm, "hearing-reminder", email=True, whatsapp=False, member=None)
    run(firm, "hearing-reminders", at("2026-11-14 08:05"))
    assert sent_to(firm, "T-7", hearing=2) == {(3, "email")}  # the firm's choice

    choose(firm, "hearing-reminder", email=False, whatsapp=True)
    run(firm, "hearing-reminders", at("2026-11-15 08:05"))
    assert sent_to(firm, "T-7", hearing=3) == {(3, "whatsapp")}  # his own, over the firm's
    # another kind is untouched by either
    add_task(firm, 1, sla_due_at=at("2026-11-14 10:00"))
    run(firm, "sla-check", at("2026-11-14 10:01"))
    assert {r["channel"] for r in notifications(firm, "sla-breach")} == {"email", "whatsapp"}


def test_none_switches_a_kind_off_but_not_a_hearing_today_or_tomorrow(
    firm: psycopg.Connection[Any],
) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    choose(firm, "hearing-reminder", email=False, whatsapp=False)
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    assert notifications(firm) == []
    # the day before (urgency 1) and the day (0): every channel he has
    run(firm, "hearing-reminders", at("2026-11-19 08:05"))
    assert sent_to(firm, "T-1") == {(3, "email"), (3, "whatsapp")}
    run(firm, "hearing-reminders", at("2026-11-20 08:05"))
    assert sent_to(firm, "T-0") == {(3, "email"), (3, "whatsapp")}
    # a choice of a channel he lacks is no way out either: email only, and no address
    firm.execute("UPDATE litigation.members SET email = NULL WHERE id = 3")
    firm.execute("DELETE FROM litigation.notification_preferences")
    choose(firm, "hearing-reminder", email=True, whatsapp=False)
    add_hearing(firm, 2, at("2026-11-22 10:30"))
    run(firm, "hearing-reminders", at("2026-11-21 08:05"))
    assert sent_to(firm, "T-1", hearing=2) == {(3, "whatsapp")}


def test_email_goes_instead_of_whatsapp_that_cannot_go_where_the_choice_says(
    firm: psycopg.Connection[Any],
) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    choose(firm, "hearing-reminder", email=False, whatsapp=True)
    firm.execute("DELETE FROM litigation.whatsapp_consents WHERE member_id = 3")  # no opt-in
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    assert sent_to(firm, "T-7") == {(3, "email")}

    firm.execute("UPDATE litigation.notification_preferences SET email_instead = false")
    add_hearing(firm, 2, at("2026-11-21 10:30"))
    run(firm, "hearing-reminders", at("2026-11-14 08:05"))
    assert sent_to(firm, "T-7", hearing=2) == set()
    # ... but the day before cannot be switched off: by the channel he has
    run(firm, "hearing-reminders", at("2026-11-20 08:05"))
    assert sent_to(firm, "T-1", hearing=2) == {(3, "email")}


def test_an_opt_out_sends_email_instead_of_what_waited_on_whatsapp_once(
    firm: psycopg.Connection[Any],
) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    add_hearing(firm, 2, at("2026-11-20 11:30"), case_id=2)
    firm.execute("UPDATE litigation.cases SET owner_id = 1 WHERE id = 2")  # Priya's: both
    choose(firm, "hearing-reminder", email=False, whatsapp=True)  # Aarav: WhatsApp only
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    assert sent_to(firm, "T-7") == {(3, "whatsapp")}
    assert sent_to(firm, "T-7", hearing=2) == {(1, "email"), (1, "whatsapp")}
    [waiting] = [r for r in notifications(firm) if r["member_id"] == 3]

    for how in ("replied STOP", "told the office"):  # said twice: one email
        as_firm(
            firm,
            1,
            "UPDATE litigation.whatsapp_consents SET opted_out_at = now(), opted_out_how = %s"
            " WHERE member_id = 3",
            how,
        )
    aarav = {r["channel"]: r for r in notifications(firm) if r["member_id"] == 3}
    assert aarav["whatsapp"]["status"] == "suppressed"
    email = aarav["email"]
    assert (email["status"], email["recipient"]) == ("pending", "aarav@mehta.example.in")
    assert (email["subject"], email["body"], email["urgency"]) == (
        waiting["subject"],
        waiting["body"],
        waiting["urgency"],
    )
    assert email["dedupe_key"] == waiting["dedupe_key"].removesuffix("whatsapp") + "email"
    assert email["next_attempt_at"] == waiting["next_attempt_at"]
    assert len([r for r in notifications(firm) if r["member_id"] == 3]) == 2

    # Priya chose both: her opt-out suppresses WhatsApp and writes no second email
    as_firm(
        firm,
        1,
        "UPDATE litigation.whatsapp_consents SET opted_out_at = now(), opted_out_how = 'STOP'"
        " WHERE member_id = 1",
    )
    priya = sorted((r["channel"], r["status"]) for r in notifications(firm) if r["member_id"] == 1)
    assert priya == [("email", "pending"), ("whatsapp", "suppressed")]

    # and a member who said "no email instead" gets none
    firm.execute("DELETE FROM gstjobs.notifications")
    firm.execute(
        "UPDATE litigation.whatsapp_consents SET opted_out_at = NULL, opted_out_how = NULL"
    )
    firm.execute("UPDATE litigation.notification_preferences SET email_instead = false")
    add_hearing(firm, 3, at("2026-11-21 10:30"))
    run(firm, "hearing-reminders", at("2026-11-14 08:05"))
    as_firm(
        firm,
        1,
        "UPDATE litigation.whatsapp_consents SET opted_out_at = now(), opted_out_how = 'STOP'"
        " WHERE member_id = 3",
    )
    assert [(r["channel"], r["status"]) for r in notifications(firm) if r["member_id"] == 3] == [
        ("whatsapp", "suppressed")
    ]


def held_until(conn: psycopg.Connection[Any], kind: str) -> set[datetime]:
    return {r["next_attempt_at"] for r in notifications(conn, kind)}


def test_quiet_hours_hold_what_can_wait_until_they_end(firm: psycopg.Connection[Any]) -> None:
    # 02:10 in Mumbai, in the firm's default quiet hours (21:00-08:00): due at 08:00
    add_task(firm, 1, sla_due_at=at("2026-11-20 02:00"))
    run(firm, "sla-check", at("2026-11-20 02:10"))
    assert held_until(firm, "sla-breach") == {at("2026-11-20 08:00")}
    assert {r["status"] for r in notifications(firm)} == {"pending"}
    # 22:40: tomorrow's 08:00
    add_task(firm, 2, sla_due_at=at("2026-11-20 22:30"))
    run(firm, "sla-check", at("2026-11-20 22:40"))
    assert held_until(firm, "sla-breach") == {at("2026-11-20 08:00"), at("2026-11-21 08:00")}

    # the escalation (urgency 2) waits too; a kind marked through quiet hours does not
    firm.execute("DELETE FROM gstjobs.notifications")
    choose(firm, "sla-breach-escalation", email=True, whatsapp=False, member=None,
           through_quiet_hours=True)  # fmt: skip
    run(firm, "sla-check", at("2026-11-21 02:40"))  # task 1, 24 h on: Rohan, his manager
    [escalation] = notifications(firm, "sla-breach-escalation")
    assert escalation["member_id"] == 2 and escalation["next_attempt_at"] <= datetime.now(UTC)

    # a member's own hours over the firm's; equal times: none
    firm.execute("DELETE FROM gstjobs.notifications")
    as_firm(
        firm,
        1,
        "UPDATE litigation.members SET quiet_from = '23:00', quiet_until = '06:30' WHERE id = 3",
    )
    add_task(firm, 3, sla_due_at=at("2026-11-22 05:00"))
    run(firm, "sla-check", at("2026-11-22 05:05"))
    assert held_until(firm, "sla-breach") == {at("2026-11-22 06:30")}
    as_firm(firm, 1, "UPDATE litigation.members SET quiet_from = '00:00', quiet_until = '00:00'")
    add_task(firm, 4, sla_due_at=at("2026-11-22 05:10"))
    run(firm, "sla-check", at("2026-11-22 05:15"))
    newest = max(notifications(firm, "sla-breach"), key=lambda r: r["id"])
    assert newest["next_attempt_at"] <= datetime.now(UTC)


def test_quiet_hours_never_hold_a_hearing_today_or_tomorrow(firm: psycopg.Connection[Any]) -> None:
    """The firm's quiet hours end at 09:00: the 08:00 slot's reminder of a hearing in a week
    waits until then; those of tomorrow's and today's hearings go at once."""
    as_firm(firm, 1, "UPDATE litigation.tenants SET quiet_from = '21:00', quiet_until = '09:00'")
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    add_hearing(firm, 2, at("2026-11-14 10:30"))
    add_hearing(firm, 3, at("2026-11-13 16:00"))
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    due = {r["dedupe_key"].split(":")[4]: r["next_attempt_at"] for r in notifications(firm)}
    assert due["T-7"] == at("2026-11-13 09:00")
    assert due["T-1"] <= datetime.now(UTC) and due["T-0"] <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("zone", "quiet", "local", "end"),
    [
        # across midnight, in Mumbai: held from 21:00 to 08:00, the ends as the window says
        ("Asia/Kolkata", ("21:00", "08:00"), "2026-11-20 02:10", "2026-11-20 08:00"),
        ("Asia/Kolkata", ("21:00", "08:00"), "2026-11-20 21:00", "2026-11-21 08:00"),
        ("Asia/Kolkata", ("21:00", "08:00"), "2026-11-20 23:59:59", "2026-11-21 08:00"),
        ("Asia/Kolkata", ("21:00", "08:00"), "2026-11-20 08:00", None),
        ("Asia/Kolkata", ("21:00", "08:00"), "2026-11-20 20:59:59", None),
        # within a day; none
        ("Asia/Kolkata", ("13:00", "14:00"), "2026-11-20 13:30", "2026-11-20 14:00"),
        ("Asia/Kolkata", ("13:00", "14:00"), "2026-11-20 14:00", None),
        ("Asia/Kolkata", ("00:00", "00:00"), "2026-11-20 03:00", None),
        # odd offsets: Kathmandu +05:45, Chatham +13:45
        ("Asia/Kathmandu", ("21:00", "08:00"), "2026-11-20 22:00", "2026-11-21 08:00"),
        ("Pacific/Chatham", ("22:00", "07:00"), "2026-11-20 06:59", "2026-11-20 07:00"),
        # Lord Howe moves its clock by half an hour (+10:30 to +11 on 4 Oct 2026): the end is
        # 08:00 on the new clock
        ("Australia/Lord_Howe", ("21:00", "08:00"), "2026-10-03 23:00", "2026-10-04 08:00"),
        # London's clocks go back on 25 Oct 2026: 08:00 GMT, not BST
        ("Europe/London", ("21:00", "08:00"), "2026-10-24 22:00", "2026-10-25 08:00"),
    ],
)
def test_quiet_hours_end_in_the_zone_as_its_clock_shows(
    conn: psycopg.Connection[Any], zone: str, quiet: tuple[str, str], local: str, end: str | None
) -> None:
    tz = ZoneInfo(zone)
    found = conn.execute(
        "SELECT gstjobs.quiet_hours_end(%s, %s, %s, %s)", (zone, *quiet, at(local, tz))
    ).fetchone()
    assert found == (at(end, tz) if end else None,)


def test_quiet_hours_ending_in_a_clock_change_end_after_it(conn: psycopg.Connection[Any]) -> None:
    """New York springs forward at 02:00 on 14 Mar 2027 (02:30 never shows): hours that end
    at 02:30 end at 03:30 EDT, the instant the clock reads then; on 1 Nov 2026 it falls back
    at 02:00 (01:30 shows twice): hours ending at 01:30 never end before the moment given."""
    ny = ZoneInfo("America/New_York")
    spring = conn.execute(
        "SELECT gstjobs.quiet_hours_end('America/New_York', '22:00', '02:30', %s)",
        (at("2027-03-14 01:10", ny),),
    ).fetchone()
    assert spring == (datetime(2027, 3, 14, 7, 30, tzinfo=UTC),)
    second_0110 = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST, after the change
    [fall] = conn.execute(
        "SELECT gstjobs.quiet_hours_end('America/New_York', '22:00', '01:30', %s)",
        (second_0110,),
    ).fetchone()  # type: ignore[misc]
    assert second_0110 <= fall <= second_0110 + timedelta(minutes=20)


def test_the_firm_application_sets_its_own_choices_only(firm: psycopg.Connection[Any]) -> None:
    firm.execute(
        "INSERT INTO litigation.notification_defaults (tenant_id, kind, email, whatsapp)"
        " VALUES (2, 'sla-breach', true, false)"
    )
    choose(firm, "sla-breach", email=True, whatsapp=False)
    choose(firm, "overdue", email=True, whatsapp=False, member=None)
    seen = as_firm(firm, 1, "SELECT tenant_id FROM litigation.notification_defaults").fetchall()
    assert seen == [(1,)]
    refused = [
        (  # another firm's choice
            "INSERT INTO litigation.notification_defaults (tenant_id, kind, email, whatsapp)"
            " VALUES (2, 'overdue', true, true)",
            errors.InsufficientPrivilege,
        ),
        (  # another firm's member, under its own firm's id
            "INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, email,"
            " whatsapp) VALUES (1, 6, 'overdue', true, true)",
            errors.ForeignKeyViolation,
        ),
        (  # a kind there is not
            "INSERT INTO litigation.notification_preferences (tenant_id, member_id, kind, email,"
            " whatsapp) VALUES (1, 3, 'marketing', true, true)",
            errors.ForeignKeyViolation,
        ),
        (  # moving a choice to another member or kind
            "UPDATE litigation.notification_preferences SET member_id = 1",
            errors.InsufficientPrivilege,
        ),
        (
            "UPDATE litigation.notification_defaults SET kind = 'sla-breach'",
            errors.InsufficientPrivilege,
        ),
        ("UPDATE litigation.members SET quiet_from = '22:00'", errors.CheckViolation),  # one end
        ("INSERT INTO gstjobs.notification_kinds VALUES ('x', 'y')", errors.InsufficientPrivilege),
    ]
    for statement, error in refused:
        with pytest.raises(error):
            as_firm(firm, 1, statement)
    # firm 2's rows are out of reach: updated or deleted, nothing happens
    assert (
        as_firm(
            firm, 1, "DELETE FROM litigation.notification_defaults WHERE tenant_id = 2"
        ).rowcount
        == 0
    )
    assert (
        as_firm(firm, 1, "UPDATE litigation.tenants SET quiet_from = '20:00' WHERE id = 2").rowcount
        == 0
    )
    assert firm.execute(
        "SELECT count(*) FROM litigation.notification_defaults WHERE tenant_id = 2"
    ).fetchone() == (1,)
    # its own it changes and removes
    assert (
        as_firm(firm, 1, "UPDATE litigation.notification_preferences SET whatsapp = true").rowcount
        == 1
    )
    assert as_firm(firm, 1, "DELETE FROM litigation.notification_preferences").rowcount == 1
    # a member the firm removes takes their choices along
    choose(firm, "overdue", email=False, whatsapp=False, member=5)
    as_firm(firm, 1, "DELETE FROM litigation.members WHERE id = 5")
    assert firm.execute("SELECT count(*) FROM litigation.notification_preferences").fetchone() == (
        0,
    )

"""WhatsApp consent: no WhatsApp message without a member's opt-in; an opt-out ends at once what
still waits for them on WhatsApp, as `suppressed`, never sent (docs/DELIVERY.md)."""

from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.integration.conftest import as_firm, at, notifications, run
from tests.integration.test_hearing_reminders import add_hearing


def channels(conn: psycopg.Connection[Any]) -> set[tuple[int, str, str]]:
    """(member, channel, status) of every hearing reminder."""
    return {(r["member_id"], r["channel"], r["status"]) for r in notifications(conn)}


def test_no_whatsapp_without_an_opt_in(firm: psycopg.Connection[Any]) -> None:
    """Aarav (member 3, case 1's owner) has a phone and opted in; take his opt-in away and
    the reminder goes by email only; record it again and WhatsApp is back."""
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    firm.execute("DELETE FROM litigation.whatsapp_consents WHERE member_id = 3")
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    assert channels(firm) == {(3, "email", "pending")}

    as_firm(
        firm,
        1,
        "INSERT INTO litigation.whatsapp_consents (tenant_id, member_id, opted_in_at,"
        " opted_in_how) VALUES (1, 3, '2026-11-14 09:00+05:30', 'replied YES on WhatsApp')",
    )
    run(firm, "hearing-reminders", at("2026-11-19 08:05"))
    assert {(r["channel"], r["dedupe_key"].split(":")[4]) for r in notifications(firm)} == {
        ("email", "T-7"),
        ("email", "T-1"),
        ("whatsapp", "T-1"),
    }


def test_an_opt_out_suppresses_what_waits_at_once_and_nothing_else(
    firm: psycopg.Connection[Any],
) -> None:
    add_hearing(firm, 1, at("2026-11-20 10:30"))
    firm.execute("UPDATE litigation.cases SET owner_id = 1 WHERE id = 2")
    add_hearing(firm, 2, at("2026-11-20 11:30"), case_id=2)  # Priya's: she stays opted in
    run(firm, "hearing-reminders", at("2026-11-13 08:05"))
    assert channels(firm) == {
        (3, "email", "pending"),
        (3, "whatsapp", "pending"),
        (1, "email", "pending"),
        (1, "whatsapp", "pending"),
    }
    # one of Aarav's WhatsApp messages is already in a dispatcher's hands: it goes
    firm.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, member_id,"
        " subject, body, dedupe_key, claimed_by)"
        " VALUES (1, 'hearing-reminder', 'whatsapp', '+919800000003', 3, 's', 'b', 'under-way', 1)"
    )

    as_firm(
        firm,
        1,
        "UPDATE litigation.whatsapp_consents SET opted_out_at = '2026-11-13 09:00+05:30',"
        " opted_out_how = 'replied STOP' WHERE member_id = 3",
    )
    rows = {r["dedupe_key"]: r for r in notifications(firm)}
    suppressed = [r for r in rows.values() if r["status"] == "suppressed"]
    assert [(r["member_id"], r["channel"]) for r in suppressed] == [(3, "whatsapp")]
    assert "opted out of WhatsApp" in suppressed[0]["last_error"]
    assert "replied STOP" in suppressed[0]["last_error"] and suppressed[0]["suppressed_at"]
    assert rows["under-way"]["status"] == "pending"  # claimed: under way
    assert channels(firm) >= {(3, "email", "pending"), (1, "whatsapp", "pending")}

    # a suppressed message is never sent: not claimed, not retried by an operator
    assert firm.execute(
        "SELECT count(*) FROM gstjobs.notifications WHERE status = 'suppressed'"
        " AND claimed_by IS NULL AND next_attempt_at <= now()"
    ).fetchone() == (1,)
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="suppressed"):
        firm.execute("SELECT gstjobs.retry_notification(%s)", (suppressed[0]["id"],))

    # the next slot: no WhatsApp for Aarav, email still; Priya's WhatsApp goes on
    run(firm, "hearing-reminders", at("2026-11-19 08:05"))
    t1 = {(r["member_id"], r["channel"]) for r in notifications(firm) if ":T-1" in r["dedupe_key"]}
    assert t1 == {(3, "email"), (1, "email"), (1, "whatsapp")}


def test_the_firm_application_records_only_its_own_members_word(
    firm: psycopg.Connection[Any],
) -> None:
    firm.execute(
        "INSERT INTO litigation.members (tenant_id, id, name, phone, role)"
        " VALUES (2, 7, 'Asha Menon', '+447700900123', 'associate')"
    )
    firm.execute(
        "INSERT INTO litigation.whatsapp_consents (tenant_id, member_id, opted_in_at,"
        " opted_in_how) VALUES (2, 7, now(), 'onboarding form')"
    )
    # firm 1 sees its own two records only
    seen = as_firm(firm, 1, "SELECT member_id FROM litigation.whatsapp_consents").fetchall()
    assert sorted(seen) == [(1,), (3,)]
    # and cannot record for firm 2's member, change firm 2's record, move a record to another
    # member, or delete one (the opt-in's when and how is the proof WhatsApp asks for)
    refused = [
        (
            "INSERT INTO litigation.whatsapp_consents (tenant_id, member_id, opted_out_at,"
            " opted_out_how) VALUES (2, 7, now(), 'forged')",
            errors.InsufficientPrivilege,
        ),
        (
            "UPDATE litigation.whatsapp_consents SET member_id = 1 WHERE member_id = 3",
            errors.InsufficientPrivilege,
        ),
        (
            "DELETE FROM litigation.whatsapp_consents WHERE member_id = 3",
            errors.InsufficientPrivilege,
        ),
    ]
    for statement, error in refused:
        with pytest.raises(error):
            as_firm(firm, 1, statement)
    changed = as_firm(
        firm,
        1,
        "UPDATE litigation.whatsapp_consents SET opted_out_at = now(), opted_out_how = 'forged'"
        " WHERE tenant_id = 2",
    )
    assert changed.rowcount == 0
    assert firm.execute(
        "SELECT opted_out_at FROM litigation.whatsapp_consents WHERE tenant_id = 2"
    ).fetchone() == (None,)


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ("(1, 3, now(), NULL, NULL, NULL)", errors.CheckViolation),  # when without how
        ("(1, 3, NULL, NULL, NULL, NULL)", errors.CheckViolation),  # nothing told
        ("(1, 3, now(), E'form\\nBcc: x', NULL, NULL)", errors.CheckViolation),  # a line break
        (f"(1, 3, now(), '{'x' * 201}', NULL, NULL)", errors.CheckViolation),
        ("(1, 99, now(), 'form', NULL, NULL)", errors.ForeignKeyViolation),  # no such member
    ],
)
def test_a_record_that_says_nothing_clear_is_refused_and_changes_nothing(
    firm: psycopg.Connection[Any], values: str, error: type[Exception]
) -> None:
    firm.execute("DELETE FROM litigation.whatsapp_consents WHERE member_id = 3")
    with pytest.raises(error):
        as_firm(
            firm,
            1,
            "INSERT INTO litigation.whatsapp_consents (tenant_id, member_id, opted_in_at,"
            f" opted_in_how, opted_out_at, opted_out_how) VALUES {values}",
        )
    assert firm.execute(
        "SELECT count(*) FROM litigation.whatsapp_consents WHERE member_id IN (3, 99)"
    ).fetchone() == (0,)


def test_a_member_the_firm_removes_takes_their_record_along(firm: psycopg.Connection[Any]) -> None:
    """The application may not delete a consent record, but it may remove a member (say one
    entered by mistake): the record goes with them, and nothing else of the firm's."""
    firm.execute(
        "INSERT INTO litigation.members (tenant_id, id, name, phone, role)"
        " VALUES (1, 8, 'Entered Twice', '+919800000008', 'associate')"
    )
    as_firm(
        firm,
        1,
        "INSERT INTO litigation.whatsapp_consents (tenant_id, member_id, opted_in_at,"
        " opted_in_how) VALUES (1, 8, now(), 'onboarding form')",
    )
    as_firm(firm, 1, "DELETE FROM litigation.members WHERE id = 8")
    left = firm.execute(
        "SELECT member_id FROM litigation.whatsapp_consents ORDER BY member_id"
    ).fetchall()
    assert left == [(1,), (3,)]

"""The outbox commands through Click, as an operator, against the real server."""

from typing import Any

import psycopg

from tests.cli.conftest import Invoke, as_json
from tests.integration.conftest import FIRM


def audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, job, details, reason FROM gstjobs.audit_log ORDER BY id"
    ).fetchall()


def add_notification(
    conn: psycopg.Connection[Any], key: str, status: str, tenant: int = 1, kind: str = "sla-breach"
) -> int:
    row = conn.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body, status,"
        " attempts, last_error, dedupe_key, sent_at) VALUES (%s, %s, 'email', 'a@b.in', 'Subject ' || %s,"
        " 'Body', %s, 8, 'SMTP 550 mailbox unavailable', %s, CASE WHEN %s = 'sent' THEN now() END) RETURNING id",
        (tenant, kind, key, status, key, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_outbox_lists_shows_and_retries(gstjobs: Invoke, conn: psycopg.Connection[Any]) -> None:
    conn.execute(FIRM.encode())
    dead = add_notification(conn, "k1", "dead")
    add_notification(conn, "k2", "sent", tenant=2, kind="hearing-reminder")
    pending = add_notification(conn, "k3", "pending")
    rows = as_json(gstjobs("outbox", "--format", "json"))
    assert [r["id"] for r in rows] == [pending, pending - 1, dead]
    for field in (
        "id",
        "tenant_id",
        "kind",
        "channel",
        "recipient",
        "subject",
        "body",
        "status",
        "attempts",
        "dedupe_key",
        "created_at",
        "sent_at",
    ):
        assert field in rows[0]
    assert [
        r["id"] for r in as_json(gstjobs("outbox", "--status", "dead", "--format", "json"))
    ] == [dead]
    assert [r["kind"] for r in as_json(gstjobs("outbox", "--tenant", "2", "--format", "json"))] == [
        "hearing-reminder"
    ]
    assert (
        len(as_json(gstjobs("outbox", "--kind", "sla-breach", "--limit", "1", "--format", "json")))
        == 1
    )
    shown = as_json(gstjobs("outbox", "show", str(dead), "--format", "json"))
    assert shown["last_error"] == "SMTP 550 mailbox unavailable"

    retried = gstjobs("outbox", "retry", str(dead), "--reason", "mailbox fixed")
    assert retried.exit_code == 0 and "dead -> pending" in retried.stdout
    assert conn.execute(
        "SELECT status, attempts FROM gstjobs.notifications WHERE id = %s", (dead,)
    ).fetchone() == ("pending", 0)
    [(_, action, _, details, reason)] = audit(conn)
    assert (
        action == "outbox.retry"
        and details["old"]["status"] == "dead"
        and reason == "mailbox fixed"
    )

    again = gstjobs("outbox", "retry", str(pending))
    assert again.exit_code == 2 and "is pending, not dead or failed" in again.stderr
    assert gstjobs("outbox", "show", "999999").exit_code == 2
    assert len(audit(conn)) == 1


def test_a_message_being_sent_shows_as_sending(
    gstjobs: Invoke, conn: psycopg.Connection[Any]
) -> None:
    """Claimed by a dispatch run, its status is still pending until the provider answers: the
    table says it is being sent, and by which run; json has the run."""
    conn.execute(FIRM.encode())
    waiting = add_notification(conn, "k1", "pending")
    sending = add_notification(conn, "k2", "pending")
    conn.execute("UPDATE gstjobs.notifications SET claimed_by = 4242 WHERE id = %s", (sending,))
    table = gstjobs("outbox").stdout
    [sending_line] = [line for line in table.splitlines() if "Subject k2" in line]
    [waiting_line] = [line for line in table.splitlines() if "Subject k1" in line]
    assert "sending (run 4242)" in sending_line
    assert "pending" in waiting_line and "sending" not in waiting_line
    rows = {r["id"]: r for r in as_json(gstjobs("outbox", "--format", "json"))}
    assert (rows[sending]["status"], rows[sending]["sending_run"]) == ("pending", 4242)
    assert rows[waiting]["sending_run"] is None

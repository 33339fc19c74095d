"""dispatch-notifications against a real SMTP server and a WhatsApp-shaped API on loopback."""

import bisect
import contextlib
import hashlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from gstjobs import ops
from gstjobs.resources import load_plpy_module
from psycopg.rows import dict_row

from tests.conftest import CRON_DB, OPERATOR, as_login, as_operator, cluster, wait_until
from tests.delivery.conftest import TOKEN, SmtpSink, WhatsAppApi, add, statuses
from tests.integration.conftest import run
from tests.reliability.tripwire import TRIP_LOCK, TRIPWIRE


def dispatch(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    return run(conn, "dispatch-notifications", datetime.now(UTC))


def time_passes(conn: psycopg.Connection[Any]) -> None:
    """Make every waiting message due now, and every channel's pause over, as if the time
    had passed."""
    conn.execute(
        "UPDATE gstjobs.notifications SET next_attempt_at = now() - interval '1 second'"
        " WHERE status IN ('pending', 'failed')"
    )
    conn.execute("UPDATE gstjobs.send_rates SET next_send_at = NULL, pace = 1, slowed_at = NULL")


def test_250_emails_go_in_one_run_each_once_the_most_urgent_first(
    outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    add(outbox, 240)
    urgent = add(outbox, 10, urgency=0, start=1000)
    # one connection: the server receives them in the order they were handed out
    outbox.execute("SELECT gstjobs.set_setting('smtp.connections', '1')")
    assert dispatch(outbox)["sent"] == 250
    first = {str(m["Subject"]) for m in smtp.received[:10]}
    assert first == {f"Hearing tomorrow: SCN/73/2025-26/{1000 + i}" for i in range(1, 11)}, (
        "urgent first"
    )
    assert dispatch(outbox)["sent"] == 0
    assert len(smtp.received) == 250 and len(set(smtp.message_ids())) == 250
    assert statuses(outbox) == {"sent": 250}
    claimed = outbox.execute(
        "SELECT count(*) FROM gstjobs.notifications WHERE claimed_by IS NOT NULL"
    ).fetchone()
    assert claimed == (0,)

    message = next(m for m in smtp.received if "SCN/73/2025-26/1001" in str(m["Subject"]))
    assert (
        message["To"] == "aarav@mehta.example.in" and message["From"] == "alerts@mehta.example.in"
    )
    assert message["Date"] is not None
    assert "Fri 20 Nov 2026, 10:30 IST" in message.get_payload(decode=True).decode("utf-8")
    expected_id = hashlib.sha256(b"test:email:1001").hexdigest()[:40]
    assert message["Message-ID"] == f"<{expected_id}@mehta.example.in>"
    reply = outbox.execute(
        "SELECT provider_reply FROM gstjobs.notifications WHERE id = %s", (urgent[0],)
    ).fetchone()
    assert reply is not None and reply[0].startswith("250 2.0.0 Ok: queued")


def test_smtp_down_for_three_runs_then_up(outbox: psycopg.Connection[Any], smtp: SmtpSink) -> None:
    ids = add(outbox, 5)
    smtp.stop()
    for attempt in (1, 2, 3):
        counts = dispatch(outbox)
        # one failed connection and the run stops trying the channel: the rest wait
        assert counts["retried"] == 1 and counts["sent"] == 0
        attempts, error, delay = outbox.execute(
            "SELECT attempts, last_error, extract(epoch FROM next_attempt_at - last_attempt_at)"
            " FROM gstjobs.notifications WHERE id = %s",
            (ids[0],),
        ).fetchone() or (0, "", 0)
        assert attempts == attempt and "unreachable" in error
        assert 60 * 2 ** (attempt - 1) * 0.79 <= float(delay) <= 60 * 2 ** (attempt - 1) * 1.21
        time_passes(outbox)
    smtp.start()
    assert dispatch(outbox)["sent"] == 5
    assert len(smtp.received) == 5 and len(set(smtp.message_ids())) == 5
    assert statuses(outbox) == {"sent": 5}


def test_a_permanent_refusal_is_dead_reported_retried_and_delivered(
    outbox: psycopg.Connection[Any], smtp: SmtpSink, db: str
) -> None:
    from click.testing import CliRunner
    from gstjobs.main import cli

    [note] = add(outbox, 1)
    smtp.answer = "550 5.1.1 mailbox unavailable"
    assert dispatch(outbox)["dead"] == 1
    row = outbox.execute(
        "SELECT status, attempts, last_error FROM gstjobs.notifications"
    ).fetchone()
    assert row == ("dead", 1, "SMTP 550 at DATA: 5.1.1 mailbox unavailable")

    operator_dsn = db.replace("postgres@", f"{OPERATOR}@")
    listed = CliRunner().invoke(
        cli, ["--dsn", operator_dsn, "outbox", "--status", "dead", "--format", "json"]
    )
    assert listed.exit_code == 0 and f'"id": {note}' in listed.stdout
    outbox.execute("UPDATE gstjobs.jobs SET scheduled_since = now()")
    run(outbox, "health-check", datetime.now(UTC))
    problems = outbox.execute("SELECT problems FROM gstjobs.health").fetchone()
    assert problems is not None and [p["code"] for p in problems[0]] == ["dead-letters"]

    retried = CliRunner().invoke(cli, ["--dsn", operator_dsn, "outbox", "retry", str(note)])
    assert retried.exit_code == 0
    smtp.answer = "250 2.0.0 Ok: queued"
    assert dispatch(outbox)["sent"] == 1 and len(smtp.received) == 1


def test_temporary_refusals_go_dead_after_the_last_attempt(
    outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    outbox.execute("SELECT gstjobs.set_setting('dispatch.max_attempts', '3')")
    add(outbox, 1)
    smtp.answer = "451 4.3.0 try again later"
    for expected in ("failed", "failed", "dead"):
        dispatch(outbox)
        time_passes(outbox)
        assert outbox.execute("SELECT status FROM gstjobs.notifications").fetchone() == (expected,)
    row = outbox.execute("SELECT attempts, last_error FROM gstjobs.notifications").fetchone()
    assert row is not None and row[0] == 3 and "the last" in row[1]


def test_whatsapp_answers_are_each_handled(
    outbox: psycopg.Connection[Any], whatsapp: type[WhatsAppApi]
) -> None:
    outbox.execute("UPDATE litigation.tenants SET whatsapp_enabled = true")
    # until the API has accepted one message in a run, one request at a time: in this order
    whatsapp.script = [
        (500, {}, {"error": {"message": "internal"}}),
        (400, {}, {"error": {"message": "invalid template"}}),
        (429, {"Retry-After": "120"}, {"error": {"message": "rate limited"}}),
    ]
    ids = add(outbox, 4, channel="whatsapp")
    # a late slot's note, as the jobs write it: two line breaks, which WhatsApp refuses in a
    # template parameter (error 132018)
    outbox.execute(
        "UPDATE gstjobs.notifications"
        " SET template = jsonb_set(template, '{params,late}', to_jsonb(E'\\n\\n(Sent late.)'::text))"
    )
    counts = dispatch(outbox)
    assert (counts["sent"], counts["retried"], counts["dead"], counts["throttled"]) == (1, 1, 1, 1)
    rows = {
        r[0]: r[1:]
        for r in outbox.execute(
            "SELECT id, status, extract(epoch FROM next_attempt_at - coalesce(last_attempt_at,"
            " now())), last_error, attempts FROM gstjobs.notifications"
        )
    }
    status, delay, error, attempts = rows[ids[0]]
    assert status == "failed" and 47 <= float(delay) <= 73 and "HTTP 500" in error  # back-off
    assert rows[ids[1]][0] == "dead" and "HTTP 400" in rows[ids[1]][2]
    # 429: the provider's rate, not the message: no attempt spent, due after its Retry-After
    status, delay, error, attempts = rows[ids[2]]
    assert status == "pending" and attempts == 0 and "HTTP 429" in error
    assert 115 <= float(delay) <= 121
    assert rows[ids[3]][0] == "sent"
    # and the channel slowed down, for every dispatcher: its bucket's pace cut by 5%
    # (regaining half a percent a second since)
    pace = outbox.execute("SELECT pace FROM gstjobs.send_rates WHERE channel = 'whatsapp'")
    assert 0.95 <= pace.fetchone()[0] < 0.96  # type: ignore[index]
    assert len(whatsapp.requests) == 4

    time_passes(outbox)
    assert dispatch(outbox)["sent"] == 2
    assert statuses(outbox) == {"sent": 3, "dead": 1}
    assert [r["json"]["to"] for r in whatsapp.requests].count("919800000003") == 6
    replies = outbox.execute(
        "SELECT provider_reply FROM gstjobs.notifications WHERE status = 'sent'"
    ).fetchall()
    assert all(r[0].startswith("wamid.") for r in replies)

    request = whatsapp.requests[-1]
    assert request["path"] == "/v19.0/1234567890/messages"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    # the notification's own id, as an email's Message-ID: the same on every attempt
    keys = outbox.execute(
        "SELECT dedupe_key FROM gstjobs.notifications WHERE channel = 'whatsapp'"
    ).fetchall()
    request_ids = {hashlib.sha256(k[0].encode()).hexdigest()[:40] for k in keys}
    assert {r["headers"]["X-Request-Id"] for r in whatsapp.requests} == request_ids
    body = request["json"]
    assert body["messaging_product"] == "whatsapp" and body["to"] == "919800000003"
    assert body["template"]["name"] == "hearing_reminder"
    parameters = body["template"]["components"][0]["parameters"]
    assert {"type": "text", "parameter_name": "when", "text": "tomorrow"} in parameters
    for sent in whatsapp.requests:
        late = sent["json"]["template"]["components"][0]["parameters"]
        assert {"type": "text", "parameter_name": "late", "text": "(Sent late.)"} in late

    everything = (
        str(outbox.execute("SELECT array_agg(n::text) FROM gstjobs.notifications AS n").fetchone())
        + str(outbox.execute("SELECT array_agg(r::text) FROM gstjobs.runs AS r").fetchone())
        + str(outbox.execute("SELECT array_agg(c.command) FROM cron.job AS c").fetchone())
    )
    assert TOKEN not in everything


def dispatchers_at_once(db: str, tenants: tuple[int | None, ...]) -> list[BaseException]:
    """A dispatch run for each of tenants (None: the whole outbox), all started at once, each
    in its own session; the errors they raised."""
    errors: list[BaseException] = []

    def dispatcher(tenant: int | None) -> None:
        try:
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute(
                    "CALL gstjobs.run_job('dispatch-notifications', tenant_id => %s)", (tenant,)
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=dispatcher, args=(t,)) for t in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_simultaneous_dispatchers_deliver_each_message_once(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    outbox.execute("INSERT INTO litigation.tenants (id, name) VALUES (3, 'Third firm')")
    for tenant in (1, 2, 3):
        add(outbox, 20, tenant=tenant, start=100 * tenant)
    # whole-outbox runs (one proceeds, the others are skipped) beside one run per firm
    assert dispatchers_at_once(db, (None, None, None, 1, 2, 3, 1)) == []
    dispatch(outbox)
    assert statuses(outbox) == {"sent": 60}
    assert len(smtp.received) == 60 and len(set(smtp.message_ids())) == 60


def senders() -> list[int]:
    """Process ids of the sender programs running now (plpy/sender.py, started by runs)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and b'"""The sender:' in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def dispatch_in_thread(db: str, errors: list[BaseException]) -> Callable[[], None]:
    """A dispatch run in a session of its own, for a thread: what it raises goes to errors."""

    def dispatcher() -> None:
        try:
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("CALL gstjobs.run_job('dispatch-notifications')")
        except BaseException as error:
            errors.append(error)

    return dispatcher


def copies_after_a_crash(conn: psycopg.Connection[Any], smtp: SmtpSink, connections: int) -> int:
    """After a dispatcher died: the next run sends what was not marked sent, each message ends
    sent once in the outbox, and the only copies the server receives are of messages it had
    accepted whose outcome the dead run had not committed, at most two per connection (each
    connection's message in flight and the next one handed to it), each with the same
    Message-ID. Returns the number of copies."""
    marked = {
        r[0]
        for r in conn.execute("SELECT subject FROM gstjobs.notifications WHERE status = 'sent'")
    }
    accepted = [str(m["Subject"]) for m in smtp.received]
    assert marked <= set(accepted), "marked sent but never accepted"
    unrecorded = set(accepted) - marked
    assert len(unrecorded) <= 2 * connections
    before = len(smtp.received)
    dispatch(conn)
    assert statuses(conn) == {"sent": 6}
    assert conn.execute(
        "SELECT count(*) FROM gstjobs.notifications WHERE claimed_by IS NOT NULL"
    ).fetchone() == (0,)
    subjects = [str(m["Subject"]) for m in smtp.received]
    assert len(set(subjects)) == 6
    again = smtp.received[before:]
    copies = [m for m in again if str(m["Subject"]) in unrecorded]
    assert {str(m["Subject"]) for m in copies} == unrecorded and len(copies) == len(unrecorded)
    first_ids = {str(m["Subject"]): m["Message-ID"] for m in smtp.received[:before]}
    assert all(m["Message-ID"] == first_ids[str(m["Subject"])] for m in copies)
    return len(copies)


@pytest.mark.parametrize("where", ["at the server", "after the server accepted"])
def test_a_dispatcher_killed_mid_run_loses_nothing_and_sends_again_only_what_was_in_flight(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink, where: str
) -> None:
    """Killed at the 4th of 6 messages, with 2 connections: while the server holds it (before
    its answer), or as the 4th acceptance is being recorded, before that was committed. Either
    way nothing is lost, nothing is marked sent that the server had not accepted, and only
    messages in flight then go twice (same Message-ID) (docs/RELIABILITY.md)."""
    add(outbox, 6)
    outbox.execute("SELECT gstjobs.set_setting('smtp.connections', '2')")
    victim = psycopg.connect(db, autocommit=True)
    pid = victim.info.backend_pid
    holder = psycopg.connect(db, autocommit=True)
    if where == "at the server":
        smtp.block_from = 4
        smtp.block.set()
    else:
        # the dispatcher stops at its 4th record of an acceptance, the server's 250 in hand
        outbox.execute(TRIPWIRE.encode())
        outbox.execute(
            "CREATE TRIGGER tripwire BEFORE UPDATE ON gstjobs.notifications FOR EACH ROW"
            " WHEN (NEW.status = 'sent' AND OLD.status <> 'sent')"
            " EXECUTE FUNCTION tripwire.trip('4')"
        )
        holder.execute("SELECT pg_advisory_lock(%s)", (TRIP_LOCK,))

    def doomed() -> None:
        with contextlib.suppress(psycopg.Error):
            victim.execute("CALL gstjobs.run_job('dispatch-notifications')")

    thread = threading.Thread(target=doomed)
    thread.start()
    if where == "at the server":
        assert smtp.blocked.wait(30), "the dispatcher never reached the server"
    else:
        wait_until(
            db, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'advisory'", (pid,)
        )
    outbox.execute("SELECT pg_terminate_backend(%s)", (pid,))
    thread.join(30)
    victim.close()
    holder.close()
    smtp.block.clear()
    outbox.execute("DROP TRIGGER IF EXISTS tripwire ON gstjobs.notifications")

    copies = copies_after_a_crash(outbox, smtp, connections=2)
    if where == "after the server accepted":
        assert copies >= 1  # the 4th at least: accepted, its record never committed
    # the dead run's sender finished what it had and ended: none is left behind
    deadline = time.monotonic() + 30
    while senders() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert senders() == []
    crashed = outbox.execute(
        "SELECT status FROM gstjobs.runs WHERE job = 'dispatch-notifications' ORDER BY id"
    ).fetchall()
    assert [c[0] for c in crashed] == ["crashed", "succeeded"]


def test_a_sender_killed_mid_run_loses_nothing_and_the_run_says_why(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    """The sender process killed (the OOM killer, a kill -9) while the server holds the 4th of
    6 messages, 2 connections: the run does not hang; the messages it had handed over and not
    heard back about wait for a retry, an attempt spent, saying why; the run fails saying so
    (gstjobs history, the GstjobsRunsFailing alert); nothing is marked sent that the server
    had not accepted; and the next run sends the rest, only those in flight going twice."""
    add(outbox, 6)
    outbox.execute("SELECT gstjobs.set_setting('smtp.connections', '2')")
    smtp.block_from = 4
    smtp.block.set()
    errors: list[BaseException] = []
    dispatcher = dispatch_in_thread(db, errors)
    thread = threading.Thread(target=dispatcher)
    thread.start()
    assert smtp.blocked.wait(30), "the dispatcher never reached the server"
    [sender] = senders()
    os.kill(sender, signal.SIGKILL)
    thread.join(30)
    assert not thread.is_alive() and errors == []
    smtp.block.clear()  # the server accepts the messages it held, for nobody now
    deadline = time.monotonic() + 10
    while smtp.active and time.monotonic() < deadline:
        time.sleep(0.05)
    why = "the sender ended (exit -9): no message"
    run = outbox.execute(
        "SELECT status, error, (counts ->> 'retried')::int FROM gstjobs.runs"
        " WHERE job = 'dispatch-notifications'"
    ).fetchone()
    assert run is not None and run[:2] == ("failed", why)
    waiting = outbox.execute(
        "SELECT last_error, attempts FROM gstjobs.notifications WHERE status = 'failed'"
    ).fetchall()
    assert len(waiting) == run[2] >= 1
    assert set(waiting) == {(f"{why} (attempt 1)", 1)}
    # the rest were sent, or never handed over (pending, no attempt spent)
    left = statuses(outbox)
    assert left["failed"] == len(waiting) and set(left) <= {"sent", "failed", "pending"}
    # a minute on, their retry is due
    outbox.execute(
        "UPDATE gstjobs.notifications SET next_attempt_at = now() WHERE status = 'failed'"
    )
    copies_after_a_crash(outbox, smtp, connections=2)


def test_login_from_and_reply_to_per_firm(outbox: psycopg.Connection[Any], smtp: SmtpSink) -> None:
    smtp.stop()
    smtp.start(login=("alerts", "app-password-123"))
    add(outbox, 1)
    outbox.execute("SELECT gstjobs.set_setting('smtp.user', 'alerts')")
    outbox.execute("SELECT gstjobs.set_setting('smtp.password', 'wrong-password')")
    outbox.execute("SELECT gstjobs.set_setting('smtp.timeout_seconds', '2')")
    counts = dispatch(outbox)
    assert counts["retried"] == 1 and len(smtp.received) == 0
    error = outbox.execute("SELECT last_error FROM gstjobs.notifications").fetchone()
    assert error is not None and error[0] and "wrong-password" not in error[0]

    outbox.execute("SELECT gstjobs.set_setting('smtp.password', 'app-password-123')")
    outbox.execute(
        "UPDATE litigation.tenants SET email_from = 'notices@mehta.example.in',"
        " reply_to = 'desk@mehta.example.in' WHERE id = 1"
    )
    time_passes(outbox)
    assert dispatch(outbox)["sent"] == 1
    [message] = smtp.received
    assert message["From"] == "notices@mehta.example.in"
    assert message["Reply-To"] == "desk@mehta.example.in"


def test_an_email_to_a_member_says_where_to_choose_what_they_receive(
    outbox: psycopg.Connection[Any], smtp: SmtpSink, whatsapp: type[WhatsAppApi]
) -> None:
    """A plain footer on every email to a member; with the firm's preferences page, RFC 8058
    one-click List-Unsubscribe to it for this member and kind, with the member's own token."""
    add(outbox, 2)
    add(outbox, 1, channel="whatsapp", start=10)
    outbox.execute("UPDATE gstjobs.notifications SET member_id = 3")
    add(outbox, 1, tenant=None, start=20)  # an operators' alert: no member, no footer
    assert dispatch(outbox)["sent"] == 4
    plain = {str(m["Subject"]): m for m in smtp.received}
    body = plain["Hearing tomorrow: SCN/73/2025-26/1"].get_payload(decode=True).decode()
    body = body.replace("\r\n", "\n")
    assert body.rstrip().endswith(
        "IST.\n\n-- \nYou receive this as a member of Mehta & Associates, Mumbai. To change"
        " what you receive, ask your firm's administrator"
    )
    assert plain["Hearing tomorrow: SCN/73/2025-26/1"]["List-Unsubscribe"] is None
    alert = plain["Hearing tomorrow: SCN/73/2025-26/21"].get_payload(decode=True).decode()
    assert "You receive this" not in alert

    # the firm's page: filled in for the member and kind, the token theirs
    outbox.execute(
        "UPDATE litigation.tenants SET preferences_url ="
        " 'https://app.mehta.example.in/prefs?m={member}&k={kind}&t={token}' WHERE id = 1"
    )
    token = outbox.execute(
        "SELECT preferences_token FROM litigation.members WHERE tenant_id = 1 AND id = 3"
    ).fetchone()
    assert token is not None
    smtp.received.clear()
    add(outbox, 1, start=30)
    outbox.execute(
        "UPDATE gstjobs.notifications SET member_id = 3 WHERE dedupe_key = 'test:email:31'"
    )
    assert dispatch(outbox)["sent"] == 1
    [message] = smtp.received
    link = f"https://app.mehta.example.in/prefs?m=3&k=hearing-reminder&t={token[0]}"
    assert message["List-Unsubscribe"] == f"<{link}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert text.rstrip().endswith(f"To choose what you receive, and how: {link}")
    # the WhatsApp message carried none of it
    assert all("You receive this" not in str(r["json"]) for r in whatsapp.requests)


def test_a_long_email_goes_with_crlf_line_ends_and_every_line_within_the_limit(
    outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    """Once, every email went with bare LFs: a server counts lines by CRLF (aiosmtpd, as this
    sink is, and Postfix 3.9 refusing bare newlines), so a message over 1,000 bytes was one
    line too long and refused: a digest, first. Now CRLF, and a body line over 998 characters
    goes quoted-printable, whole once decoded."""
    add(outbox, 1)
    paragraph = "Case SCN/73/2025-26/1: " + "the department's order " * 60  # ~1,400 characters
    body = "\n".join([paragraph, *(f"line {i}: a hearing, a deadline" for i in range(80))])
    outbox.execute("UPDATE gstjobs.notifications SET body = %s", (body,))
    assert dispatch(outbox)["sent"] == 1
    [raw] = smtp.raw
    assert b"\n" not in raw.replace(b"\r\n", b"")  # no bare LF
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    [message] = smtp.received
    text = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert text.startswith(paragraph + "\n") and "line 79: a hearing, a deadline" in text


@pytest.mark.parametrize(
    "url",
    [
        "http://app.mehta.example.in/prefs",  # not https
        "https://app.mehta.example.in/prefs?a=b\r\nBcc: spy@evil.example",
        "https://app.mehta.example.in/<script>",
        "https://app.mehta.example.in/a b",
        "javascript:alert(1)",
        "https://" + "a" * 600 + ".example.in/",
    ],
)
def test_a_preferences_page_that_is_not_a_plain_https_address_is_refused(
    outbox: psycopg.Connection[Any], url: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="tenants_preferences_url_https"):
        outbox.execute("UPDATE litigation.tenants SET preferences_url = %s WHERE id = 1", (url,))


def test_a_firm_limit_leaves_the_rest_for_the_next_run(
    outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    outbox.execute("SELECT gstjobs.set_setting('dispatch.per_firm_limit', '3')")
    add(outbox, 5, tenant=1)
    add(outbox, 5, tenant=2, start=100)
    assert dispatch(outbox)["sent"] == 6
    sent = dict(
        outbox.execute(
            "SELECT tenant_id, count(*) FROM gstjobs.notifications WHERE status = 'sent' GROUP BY 1"
        ).fetchall()
    )
    assert sent == {1: 3, 2: 3}
    assert dispatch(outbox)["sent"] == 4
    assert statuses(outbox) == {"sent": 10}


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_tls_verified_against_the_configured_ca(
    outbox: psycopg.Connection[Any], smtp: SmtpSink, certificate: tuple[str, str], mode: str
) -> None:
    smtp.stop()
    smtp.start(tls=mode, certificate=certificate)
    outbox.execute("SELECT gstjobs.set_setting('smtp.tls', %s)", (mode,))
    add(outbox, 1)
    # the server's certificate is not signed by a CA the system knows: refused, retried later
    assert dispatch(outbox)["retried"] == 1 and smtp.received == []
    error = outbox.execute("SELECT last_error FROM gstjobs.notifications").fetchone()
    assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error[0]
    # the CA file must be in smtp.ca_dir, which a superuser (this test's connection) sets
    outbox.execute(
        "SELECT gstjobs.set_settings(jsonb_build_object('smtp.ca_dir', %s::text,"
        " 'smtp.ca_file', %s::text))",
        (str(Path(certificate[0]).parent), certificate[0]),
    )
    time_passes(outbox)
    assert dispatch(outbox)["sent"] == 1 and len(smtp.received) == 1


@pytest.mark.slow
def test_pg_cron_and_a_manual_run_at_the_same_moment_send_each_message_once(
    cron_db: str, smtp: SmtpSink
) -> None:
    """In the database pg_cron serves, two messages a second: manual runs of five seconds
    each, one after another until pg_cron's own tick of dispatch-notifications has come and
    gone, then until the outbox is empty. Whoever sends, each message goes once."""
    with psycopg.connect(cron_db, autocommit=True) as conn:
        conn.execute(
            "SELECT gstjobs.set_settings(jsonb_build_object('smtp.host', '127.0.0.1',"
            " 'smtp.port', %s::text, 'dispatch.run_seconds', '5', 'smtp.rate_per_second', '2'))",
            (str(smtp.port),),
        )
        conn.execute("DELETE FROM gstjobs.notifications")
        add(conn, 40, tenant=None)
        since = conn.execute("SELECT now()").fetchone()
        try:
            deadline = time.monotonic() + 150  # a generous bound on waiting for the tick
            while True:
                conn.execute("CALL gstjobs.run_job('dispatch-notifications')")
                ticked = conn.execute(
                    "SELECT count(*) FROM gstjobs.runs WHERE job = 'dispatch-notifications'"
                    " AND trigger = 'cron' AND status <> 'running' AND started_at > %s",
                    since,
                ).fetchone()
                left = conn.execute(
                    "SELECT count(*) FROM gstjobs.notifications WHERE status <> 'sent'"
                ).fetchone()
                if ticked != (0,) and left == (0,):
                    break
                assert time.monotonic() < deadline, (ticked, left)
                time.sleep(0.5)  # pace: the tick comes while messages are still waiting
            triggers = {
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT trigger FROM gstjobs.runs"
                    " WHERE job = 'dispatch-notifications' AND started_at > %s",
                    since,
                )
            }
        finally:
            conn.execute("DELETE FROM gstjobs.notifications")
            conn.execute(
                "DELETE FROM gstjobs.settings WHERE key LIKE 'smtp.%' OR key LIKE 'dispatch.%'"
            )
    assert triggers == {"cron", "manual"}
    assert len(smtp.received) == 40 and len(set(smtp.message_ids())) == 40


def test_whatsapp_timeouts_and_refused_connections_are_retried(
    outbox: psycopg.Connection[Any],
) -> None:
    import socket

    outbox.execute("UPDATE litigation.tenants SET whatsapp_enabled = true")
    outbox.execute("SELECT gstjobs.set_setting('whatsapp.timeout_seconds', '1')")
    [note] = add(outbox, 1, channel="whatsapp")
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        # a new endpoint: the token is set again with it (a secret is bound to its endpoint)
        outbox.execute(
            "SELECT gstjobs.set_settings(jsonb_build_object('whatsapp.url', %s::text,"
            " 'whatsapp.token', 'EAAG-test-token-9f8e7d6c5b4a'))",
            (f"http://127.0.0.1:{port}/v19.0/1",),
        )
        assert dispatch(outbox)["retried"] == 1
    row = outbox.execute(
        "SELECT status, attempts, last_error FROM gstjobs.notifications WHERE id = %s", (note,)
    ).fetchone()
    assert row is not None and row[:2] == ("failed", 1) and "unreachable" in row[2]
    time_passes(outbox)  # the port is closed now: connection refused
    assert dispatch(outbox)["retried"] == 1
    row = outbox.execute(
        "SELECT status, attempts FROM gstjobs.notifications WHERE id = %s", (note,)
    ).fetchone()
    assert row == ("failed", 2)


@pytest.mark.parametrize(
    ("attempts_before", "delay"),
    [(0, 60), (1, 120), (5, 1920), (6, 3600), (12, 3600), (40, 3600)],
)
def test_back_off_doubles_from_a_minute_up_to_an_hour(
    outbox: psycopg.Connection[Any], smtp: SmtpSink, attempts_before: int, delay: int
) -> None:
    """After the n-th failure the next attempt waits 60 * 2^(n-1) s, never more than an hour,
    within +-20% (jitter): measured from the attempt's own time, as recorded."""
    outbox.execute("SELECT gstjobs.set_setting('dispatch.max_attempts', '100')")
    [note] = add(outbox, 1)
    outbox.execute(
        "UPDATE gstjobs.notifications SET attempts = %s, status = 'failed' WHERE id = %s",
        (attempts_before, note),
    )
    smtp.answer = "451 4.3.0 try again later"
    assert dispatch(outbox)["retried"] == 1
    waited = outbox.execute(
        "SELECT attempts, extract(epoch FROM next_attempt_at - last_attempt_at)"
        " FROM gstjobs.notifications WHERE id = %s",
        (note,),
    ).fetchone()
    assert waited is not None and waited[0] == attempts_before + 1
    assert 0.8 * delay - 1 <= float(waited[1]) <= 1.2 * delay + 1, waited


@pytest.mark.slow
@pytest.mark.parametrize("where", ["at the server", "after the server accepted"])
def test_the_server_stopped_dead_while_sending_loses_nothing(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink, where: str
) -> None:
    """pg_ctl stop -m immediate at the 4th of 6 messages (as in the kill test above, but the
    whole server: every backend gone, shared memory dropped, WAL replayed at start): nothing is
    lost, and only messages in flight then go twice."""
    add(outbox, 6)
    outbox.execute("SELECT gstjobs.set_setting('smtp.connections', '2')")
    holder = psycopg.connect(db, autocommit=True)
    if where == "at the server":
        smtp.block_from = 4
        smtp.block.set()
    else:
        outbox.execute(TRIPWIRE.encode())
        outbox.execute(
            "CREATE TRIGGER tripwire BEFORE UPDATE ON gstjobs.notifications FOR EACH ROW"
            " WHEN (NEW.status = 'sent' AND OLD.status <> 'sent')"
            " EXECUTE FUNCTION tripwire.trip('4')"
        )
        holder.execute("SELECT pg_advisory_lock(%s)", (TRIP_LOCK,))
    victim = psycopg.connect(db, autocommit=True)

    def doomed() -> None:
        with contextlib.suppress(psycopg.Error):
            victim.execute("CALL gstjobs.run_job('dispatch-notifications')")

    thread = threading.Thread(target=doomed)
    thread.start()
    if where == "at the server":
        assert smtp.blocked.wait(30), "the dispatcher never reached the server"
    else:
        wait_until(db, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory'")
    cluster("crash", CRON_DB)
    thread.join(30)
    victim.close()
    holder.close()
    smtp.block.clear()
    cluster("start", CRON_DB)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS tripwire ON gstjobs.notifications")
        copies = copies_after_a_crash(conn, smtp, connections=2)
        if where == "after the server accepted":
            assert copies >= 1
        ledger = [
            r[0]
            for r in conn.execute(
                "SELECT status FROM gstjobs.runs WHERE job = 'dispatch-notifications' ORDER BY id"
            )
        ]
        assert ledger == ["crashed", "succeeded"]


def test_a_slow_server_gets_as_many_messages_at_once_as_there_are_connections(
    outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    """A relay that takes 0.2 s a message: the run keeps smtp.connections sessions busy, not
    one, and still sends each message once."""
    outbox.execute("SELECT gstjobs.set_setting('smtp.connections', '8')")
    smtp.delay = 0.2
    add(outbox, 48)
    assert dispatch(outbox)["sent"] == 48
    assert smtp.most_active == 8
    assert len(set(smtp.message_ids())) == 48 and statuses(outbox) == {"sent": 48}


def most_in_a_second(times: list[float]) -> int:
    """The most of the times within any one second."""
    times = sorted(times)
    return max(bisect.bisect_left(times, start + 1.0) - i for i, start in enumerate(times))


@pytest.mark.parametrize("rate", [1, 20, 80, 250, 10000])
def test_the_schedule_never_gives_more_than_the_rate_in_any_second_and_loses_nothing_to_late_calls(
    conn: psycopg.Connection[Any], rate: int
) -> None:
    """TAKE and REFUND, the statements dispatch runs (plpy/dispatch.py), on a clock of the
    test's (TAKE's fifth parameter): two dispatchers taking greedily, coming back late by up
    to a third of a second as a loaded loop does, pausing now and then, and giving back part
    of what they took (fewer messages due than taken). The send times both get are one
    schedule: never two closer than the interval (2% over the rate's), so no second, the
    window a provider counts in, gets more than the rate; none in the past nor further
    ahead than the horizon; and over half a minute they get the whole schedule: lateness
    loses nothing. (The token bucket, 25 ms deep, lost a late loop's tokens: 54 a second of
    80 at the 08:00 peak.)"""
    dispatch_module = load_plpy_module("dispatch")
    conn.execute(
        "PREPARE take (text, integer, float8, float8, timestamptz, float8) AS "
        + dispatch_module.TAKE
    )
    conn.execute("PREPARE refund (text, timestamptz, float8) AS " + dispatch_module.REFUND)
    base = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)  # 08:00 IST
    horizon = dispatch_module.HORIZON
    lateness = (0.0, 0.004, 0.06, 0.011, 0.1, 0.025, 0.33)
    execute = psycopg.ClientCursor(conn).execute  # EXECUTE takes values, not parameters
    times: list[float] = []
    clocks = [0.0, 0.013]  # each dispatcher's next call
    calls = 0
    while min(clocks) < 30:
        who = clocks.index(min(clocks))
        now = clocks[who]
        got, first, spacing, until, wait = execute(
            "EXECUTE take ('whatsapp', 1000000, %s, 0.005, %s, %s)",
            (rate, base + timedelta(seconds=now), horizon),
        ).fetchone()  # type: ignore[misc]
        calls += 1
        if got and calls % 3 == 0:  # fewer were due than taken: some given back
            got -= got // 2
            execute("EXECUTE refund ('whatsapp', %s, %s)", (until, first + got * spacing))
        at = [first + i * spacing - base.timestamp() for i in range(got)]
        assert all(now - 1e-6 <= t <= now + horizon + 1e-6 for t in at), (now, at[:3], at[-3:])
        times += at
        if got or wait <= 0:
            clocks[who] = now + lateness[calls % len(lateness)]
        else:
            clocks[who] = now + wait + 0.0005  # the run sleeps until the schedule is in reach
        if calls % 400 == 0:
            clocks[who] += 0.7  # a long pause: a slow commit, a busy machine
    times.sort()
    interval = dispatch_module.MARGIN / rate
    assert min(b - a for a, b in itertools.pairwise(times)) >= interval - 1e-6
    assert most_in_a_second(times) <= rate
    # the whole schedule of the half minute: the first time at 0, then one each interval
    assert sum(1 for t in times if t < 30) >= int(30 / interval) - 1, len(times)


def test_a_schedule_left_ahead_by_a_clock_set_back_starts_again(
    conn: psycopg.Connection[Any],
) -> None:
    """The server's clock set back an hour (or a schedule written far ahead): next_send_at is
    further ahead than any take reaches. The channel must not wait for the hour: the next take
    starts from now."""
    dispatch_module = load_plpy_module("dispatch")
    conn.execute(
        "UPDATE gstjobs.send_rates SET next_send_at = clock_timestamp() + interval '1 hour'"
    )
    conn.execute(
        "PREPARE take (text, integer, float8, float8, timestamptz, float8) AS "
        + dispatch_module.TAKE
    )
    taken, first, _, _, wait = (
        psycopg.ClientCursor(conn)
        .execute("EXECUTE take ('whatsapp', 5, 80, 0.005, NULL, %s)", (dispatch_module.HORIZON,))
        .fetchone()
    )  # type: ignore[misc]
    assert (taken, wait) == (5, 0)
    assert -1 < first - time.time() <= 0.01  # from now, not from an hour ahead


def test_the_rate_holds_across_concurrent_dispatchers(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    """20 emails a second: two firms' own runs at once share that rate (the schedule is in the
    database): never more than 20 in any one second, the window a provider counts in."""
    outbox.execute("SELECT gstjobs.set_setting('smtp.rate_per_second', '20')")
    add(outbox, 40, tenant=1)
    add(outbox, 40, tenant=2, start=100)
    assert dispatchers_at_once(db, (1, 2)) == [] and statuses(outbox) == {"sent": 80}
    assert len(set(smtp.message_ids())) == 80
    # one send time every 51 ms between the two runs; a message reaches the server a moment
    # after its time, by a varying delay (a thread waking, the SMTP exchange, and for the
    # first on each connection its session opening, tens of ms): 2 messages at most
    assert most_in_a_second(smtp.accepted_at) <= 20 + 2
    # so 80 messages cannot take less than 79 intervals
    assert smtp.accepted_at[-1] - smtp.accepted_at[0] >= 79 * 1.02 / 20 - 0.1
    runs = outbox.execute(
        "SELECT count(*) FROM gstjobs.runs WHERE job = 'dispatch-notifications'"
        " AND status = 'succeeded' AND (counts ->> 'sent')::int > 0"
    ).fetchone()
    assert runs == (2,), "both runs sent"


def test_the_runs_at_a_handover_keep_one_schedule(
    db: str, outbox: psycopg.Connection[Any], whatsapp: type[WhatsAppApi]
) -> None:
    """The handover at each tick: a run past its claiming time still has messages it took and
    has not sent when the next run begins beside it. The two send on one schedule, each
    message at its own time a rate's interval after the one before, whichever run sends it:
    never more than the rate in a second, the window a provider counts in. (Each run's sender
    spaced its own sends before, and at a handover the draining run's sends went between the
    new run's, 8 ms apart.) A provider answering in 0.2 s, as WhatsApp does; 20 a second, one
    every 51 ms."""
    whatsapp.delay = 0.2
    outbox.execute(
        'SELECT gstjobs.set_settings(\'{"whatsapp.rate_per_second": "20",'
        ' "whatsapp.connections": "8", "dispatch.run_seconds": "5"}\')'
    )
    add(outbox, 150, channel="whatsapp")
    errors: list[BaseException] = []
    dispatcher = dispatch_in_thread(db, errors)
    first = threading.Thread(target=dispatcher)
    first.start()
    wait_until(
        db,
        "SELECT FROM gstjobs.runs WHERE job = 'dispatch-notifications'"
        " AND status = 'running' AND counts -> 'draining' = 'true'::jsonb",
        seconds=15,
    )
    second = threading.Thread(target=dispatcher)
    second.start()
    first.join(60)
    second.join(60)
    assert errors == []
    runs = outbox.execute(
        "SELECT count(*) FROM gstjobs.runs WHERE job = 'dispatch-notifications'"
        " AND status = 'succeeded' AND (counts ->> 'sent')::int > 0"
    ).fetchone()
    assert runs == (2,), "both runs sent"
    assert len(whatsapp.requests) == statuses(outbox)["sent"]
    times = sorted(r["at"] for r in whatsapp.requests)
    # each request reaches the server a moment after its time (a thread waking, a
    # connection opening), by a varying delay: two within a third of the interval only where
    # a stall of the machine held one back (once in a CI run of the whole suite: one such
    # pair; each run's own spacing put them 8 ms apart at the handover), nor more than one
    # over the rate in a second
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert sum(1 for gap in gaps if gap < 1.02 / 20 / 3) <= 2, gaps
    assert most_in_a_second(times) <= 20 + 1


def test_a_run_stops_claiming_after_its_time_and_the_next_goes_on(
    outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    """Five a second for five seconds: a run sends what its time allows, not everything due,
    and ends; what is left waits for the next run, pending and unclaimed."""
    outbox.execute(
        'SELECT gstjobs.set_settings(\'{"smtp.rate_per_second": "5",'
        ' "dispatch.run_seconds": "5"}\')'
    )
    add(outbox, 60)
    first = dispatch(outbox)["sent"]
    # at most five a second for five seconds and the second of send times a run takes
    # ahead (handed out before the time is up, sent at their times after it)
    assert 20 <= first <= 1 + 5 * (5 + 1)
    took = outbox.execute(
        "SELECT extract(epoch FROM finished_at - started_at) FROM gstjobs.runs"
        " WHERE job = 'dispatch-notifications'"
    ).fetchone()
    assert took is not None and 4.5 <= float(took[0]) < 8
    assert statuses(outbox) == {"sent": first, "pending": 60 - first}
    assert outbox.execute(
        "SELECT count(*) FROM gstjobs.notifications WHERE claimed_by IS NOT NULL"
    ).fetchone() == (0,)
    second = dispatch(outbox)["sent"]
    assert second >= 20 and statuses(outbox)["sent"] == first + second
    assert len(set(smtp.message_ids())) == first + second == len(smtp.received)


@contextlib.contextmanager
def writer_held(db: str, outbox: psycopg.Connection[Any]) -> Iterator[Callable[[str], None]]:
    """sla-check at work, held at its first notification (one task due at 10:00 on
    2026-11-20) until the block ends; yields a function that runs a statement in a thread of
    its own. Errors of either thread are asserted empty at the end."""
    from tests.integration.conftest import at
    from tests.integration.test_sla_check import add_task

    due = at("2026-11-20 10:00")
    add_task(outbox, 1, due_at=due)
    outbox.execute(TRIPWIRE.encode())
    outbox.execute(
        "CREATE TRIGGER tripwire BEFORE INSERT ON gstjobs.notifications"
        " FOR EACH ROW EXECUTE FUNCTION tripwire.trip('1')"
    )
    holder = psycopg.connect(db, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (TRIP_LOCK,))
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def call(statement: str, *params: Any) -> None:
        try:
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute(statement, params)
        except BaseException as error:
            errors.append(error)

    def start(statement: str, *params: Any) -> None:
        threads.append(threading.Thread(target=call, args=(statement, *params)))
        threads[-1].start()

    start("CALL gstjobs.run_job('sla-check', as_of => %s)", due + timedelta(seconds=30))
    wait_until(db, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory'")
    try:
        yield start
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", (TRIP_LOCK,))
        for thread in threads:
            thread.join(30)
        holder.close()
    assert errors == []


def test_with_nothing_due_a_run_waits_for_a_job_at_work_and_sends_what_it_writes(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    """At 09:00 deadline-alerts and dispatch start at one tick: the dispatch run finds nothing
    due yet. It waits while a job that writes notifications is at work (here sla-check, held
    at its first notification), and sends what it wrote in the same run, not a minute later."""
    with writer_held(db, outbox) as start:
        start("CALL gstjobs.run_job('dispatch-notifications')")
        wait_until(
            db,
            "SELECT 1 FROM gstjobs.runs"
            " WHERE job = 'dispatch-notifications' AND status = 'running'",
        )
        time.sleep(1)
        assert outbox.execute(
            "SELECT status FROM gstjobs.runs WHERE job = 'dispatch-notifications'"
        ).fetchall() == [("running",)], "the dispatch run ended with a writer at work"
    runs = outbox.execute(
        "SELECT (counts ->> 'sent')::int FROM gstjobs.runs"
        " WHERE job = 'dispatch-notifications' ORDER BY id"
    ).fetchall()
    # one run sent what sla-check wrote: the assignee's email and WhatsApp message
    assert runs == [(2,)] and statuses(outbox) == {"sent": 2} and len(smtp.received) == 1


def test_a_run_that_may_send_on_no_channel_does_not_wait_for_a_job_at_work(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    """Waiting for a writer is for sending what it writes: a run whose every channel is
    stopped (here email by a login without a password, WhatsApp not set up) ends at once,
    failed and saying why, though sla-check is at work; it does not sit out its time."""
    outbox.execute(
        'SELECT gstjobs.set_settings(\'{"dispatch.run_seconds": "40", "smtp.user": "alerts",'
        ' "whatsapp.url": ""}\')'
    )
    (waiting,) = add(outbox, 1)
    with writer_held(db, outbox):
        started = time.monotonic()
        run_id = outbox.execute(
            "CALL gstjobs.run_job('dispatch-notifications', as_of => %s)", (datetime.now(UTC),)
        ).fetchone()
        took = time.monotonic() - started
    ended = outbox.execute(
        "SELECT status, error FROM gstjobs.runs WHERE id = %s", (run_id[0] if run_id else None,)
    ).fetchone()
    assert ended == ("failed", "email not sent: smtp.user is set but smtp.password is not")
    # the run's time was 40 s: it ended long before, while the writer was still held
    assert took < 20, f"the run waited {took:.1f} s for a writer with no channel to send on"
    assert smtp.received == [] and outbox.execute(
        "SELECT status, attempts FROM gstjobs.notifications WHERE id = %s", (waiting,)
    ).fetchone() == ("pending", 0)


def test_a_run_finishing_its_messages_in_flight_does_not_hold_up_the_next(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink
) -> None:
    """A run past its claiming time only waits for the replies to what it has under way: the
    next tick's run begins beside it (not skipped), and each message still goes once."""
    outbox.execute(
        'SELECT gstjobs.set_settings(\'{"dispatch.run_seconds": "5", "smtp.connections": "1"}\')'
    )
    smtp.delay = 4  # each message takes 4 s: at 5 s, the run's second one is still in flight
    add(outbox, 6)
    errors: list[BaseException] = []
    first = threading.Thread(target=lambda: errors.extend(dispatchers_at_once(db, (None,))))
    first.start()
    draining = wait_until(
        db,
        "SELECT id FROM gstjobs.runs WHERE job = 'dispatch-notifications'"
        " AND status = 'running' AND counts -> 'draining' = 'true'",
        seconds=30,
    )
    second = dispatch(outbox)  # succeeded: it ran beside the draining one, not skipped
    first.join(60)
    assert errors == []
    runs = outbox.execute(
        "SELECT id, status, (counts ->> 'sent')::int, started_at, finished_at FROM gstjobs.runs"
        " WHERE job = 'dispatch-notifications' ORDER BY id"
    ).fetchall()
    assert [r[1] for r in runs] == ["succeeded", "succeeded"]
    assert runs[0][0] == draining[0] and runs[1][3] < runs[0][4], "the second began first ended"
    assert runs[0][2] >= 2 and second["sent"] >= 1
    sent = runs[0][2] + second["sent"]
    assert statuses(outbox) == {"sent": sent} | ({"pending": 6 - sent} if sent < 6 else {})
    assert len(smtp.received) == sent and len(set(smtp.message_ids())) == sent
    assert smtp.most_active == 2  # one session each, side by side


def test_a_statement_timeout_of_the_database_does_not_cut_a_run_short(
    db: str, outbox: psycopg.Connection[Any], smtp: SmtpSink, operator_role: str
) -> None:
    """A DBA's statement_timeout for the database, meant for the firms' queries, counts the
    whole CALL of a run, across its commits: a dispatch run longer than it was cut short in the
    middle of its sending. gstjobs stops its runs at their own timeouts (timeout.<job>): a run
    by pg_cron's role, or by hand through gstjobs (CLI, dashboard), is not subject to it. And
    the jobs are written for READ COMMITTED (the claims skip locked rows): the runner's
    sessions read committed whatever the database's default."""
    name = psycopg.conninfo.conninfo_to_dict(db)["dbname"]
    outbox.execute(f"ALTER DATABASE {name} SET statement_timeout = '1s'")
    outbox.execute(f"ALTER DATABASE {name} SET default_transaction_isolation = 'serializable'")
    outbox.execute("SELECT gstjobs.set_setting('smtp.connections', '1')")
    smtp.delay = 0.5  # three messages, one at a time: 1.5 s
    add(outbox, 3)
    # a session of the runner, as pg_cron's background worker opens it
    with psycopg.connect(as_login(db, "gstjobs_runner"), autocommit=True) as runner:
        assert runner.execute("SHOW default_transaction_isolation").fetchone() == (
            "read committed",
        )
        called = runner.execute("CALL gstjobs.run_job('dispatch-notifications')").fetchone()
    assert called is not None and outbox.execute(
        "SELECT status, (counts ->> 'sent')::int FROM gstjobs.runs WHERE id = %s", called
    ).fetchone() == ("succeeded", 3)
    add(outbox, 3, start=100)
    with psycopg.connect(as_operator(db), autocommit=True, row_factory=dict_row) as operator:
        report = ops.run_job(operator, "dispatch-notifications")  # type: ignore[arg-type]
        assert (report["status"], report["counts"]["sent"]) == ("succeeded", 3)
        # the operator's session keeps the database's defaults for what it does next
        assert operator.execute(
            "SELECT current_setting('statement_timeout') AS timeout,"
            " current_setting('default_transaction_isolation') AS isolation"
        ).fetchone() == {"timeout": "1s", "isolation": "serializable"}
    assert statuses(outbox) == {"sent": 6} and len(smtp.received) == 6

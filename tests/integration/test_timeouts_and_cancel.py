"""Stopping a run: past its job's timeout it ends failed ("timed out after ..."), cancelled by an
operator it ends cancelled; either way its batch under way is rolled back, as a crash's would
be, and the next run does the work. The runs here are held on a lock, as a run is that waits for
a firm application's long transaction."""

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.main import cli

from tests.conftest import as_operator
from tests.integration.conftest import at, notifications, run
from tests.integration.test_sla_check import add_task

DUE = at("2026-11-03 10:00")
AS_OF = DUE + timedelta(minutes=5)


class HeldRun:
    """A run of sla-check (by hand, as the operator) held on the lock a firm application's
    transaction keeps on its tasks."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.error: BaseException | None = None
        self.run_id: int | None = None

    def call(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                row = conn.execute(
                    "CALL gstjobs.run_job('sla-check', as_of => %s)", (AS_OF,)
                ).fetchone()
                assert row is not None
                self.run_id = row[0]
        except BaseException as error:
            self.error = error


@contextlib.contextmanager
def held_run(
    db: str, superuser: bool = False
) -> Iterator[tuple[HeldRun, psycopg.Connection[Any], int]]:
    """(the run's caller, the lock holder, the run's id) once the run waits on the lock; the run
    by hand as the operator, or as the superuser."""
    holder = psycopg.connect(db)
    holder.execute("LOCK TABLE litigation.tasks IN ACCESS EXCLUSIVE MODE")
    held = HeldRun(db if superuser else as_operator(db))
    thread = threading.Thread(target=held.call)
    thread.start()
    try:
        with psycopg.connect(db, autocommit=True) as look:
            deadline = time.monotonic() + 30
            while True:
                row = look.execute(
                    "SELECT r.id FROM gstjobs.runs AS r"
                    " JOIN pg_stat_activity AS a ON a.pid = r.backend_pid"
                    " WHERE r.job = 'sla-check' AND r.status = 'running'"
                    "   AND a.wait_event_type = 'Lock'"
                ).fetchone()
                if row is not None:
                    break
                assert time.monotonic() < deadline, "the run never waited on the lock"
                time.sleep(0.05)
        yield held, holder, row[0]
    finally:
        holder.rollback()
        thread.join(60)
        holder.close()
        assert not thread.is_alive(), "the held run did not end"


def ledger(conn: psycopg.Connection[Any], run_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT status, error, stop, stop_requested_by, counts FROM gstjobs.runs WHERE id = %s",
        (run_id,),
    ).fetchone()
    assert row is not None
    return dict(zip(("status", "error", "stop", "by", "counts"), row, strict=True))


def wait_for_end(conn: psycopg.Connection[Any], run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (found := ledger(conn, run_id))["status"] == "running":
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.05)
    return found


def test_a_run_past_its_timeout_fails_timed_out_and_the_next_run_does_the_work(
    firm: psycopg.Connection[Any], db: str, operator_role: str
) -> None:
    add_task(firm, 1, sla_due_at=DUE)
    with psycopg.connect(as_operator(db), autocommit=True) as operator:
        operator.execute("SELECT gstjobs.set_setting('timeout.sla-check', '10')")
        with held_run(db) as (held, holder, run_id):
            time.sleep(3)
            # not yet past 10 s: the start of another job's run leaves it alone
            run(firm, "heartbeat", AS_OF)
            assert ledger(firm, run_id)["status"] == "running"
            time.sleep(8)
            # past it: every run's start stops the runs past their timeout
            run(firm, "heartbeat", AS_OF)
            stopped = wait_for_end(firm, run_id)
            # the firm application's transaction is still open: the run did not wait for it
            assert holder.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert held.error is None and held.run_id == run_id  # the CALL itself ended normally
    assert stopped["status"] == "failed"
    assert stopped["error"].startswith("timed out after 10 s (setting timeout.sla-check)")
    assert stopped["stop"] == "timeout"
    # the batch under way was rolled back: nothing was recorded or notified
    assert notifications(firm) == []
    assert firm.execute(
        "SELECT count(*) FROM litigation.tasks WHERE sla_breach_detected_at IS NOT NULL"
    ).fetchone() == (0,)
    # the lock gone, the next run does the work
    assert run(firm, "sla-check", AS_OF)["sla-breach.tasks"] == 1
    assert len(notifications(firm, "sla-breach")) == 2  # Aarav: email and WhatsApp


def test_an_operator_cancels_a_held_run_from_the_cli_and_it_is_audited(
    firm: psycopg.Connection[Any], db: str, operator_role: str
) -> None:
    add_task(firm, 1, sla_due_at=DUE)
    runner = CliRunner()
    with held_run(db) as (held, _holder, run_id):
        result = runner.invoke(
            cli,
            ["--dsn", as_operator(db), "cancel", "sla-check", "--reason", "blocks the firm app"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert "cancelled" in result.output and str(run_id) in result.output
        cancelled = ledger(firm, run_id)
    assert held.error is None
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"] == "cancelled by gstjobs_test_operator: blocks the firm app"
    assert cancelled["by"] == "gstjobs_test_operator"
    audit = firm.execute(
        "SELECT actor, reason, details -> 'runs' -> 0 ->> 'run_id' FROM gstjobs.audit_log"
        " WHERE action = 'cancel' AND job = 'sla-check'"
    ).fetchall()
    assert audit == [("gstjobs_test_operator", "blocks the firm app", str(run_id))]
    assert notifications(firm) == []
    # the history shows it, and a cancelled run is no failure
    shown = runner.invoke(
        cli, ["--dsn", as_operator(db), "history", "sla-check", "--status", "cancelled"]
    )
    assert shown.exit_code == 0 and str(run_id) in shown.output, shown.output
    # nothing to cancel now: refused, nothing written
    again = runner.invoke(cli, ["--dsn", as_operator(db), "cancel", "sla-check"])
    assert again.exit_code == 2
    assert "no run of sla-check is running" in again.output
    assert firm.execute(
        "SELECT count(*) FROM gstjobs.audit_log WHERE action = 'cancel'"
    ).fetchone() == (1,)
    assert run(firm, "sla-check", AS_OF)["sla-breach.tasks"] == 1


def test_a_run_whose_call_ended_on_the_stop_is_recorded_as_the_stop_said(
    firm: psycopg.Connection[Any],
) -> None:
    """A cancel that lands after the run's last statement ends its CALL with the error before
    the run can record it: the next start's look at the ledger records what was asked."""
    for stop, reason, status in (
        ("cancel", "cancelled by someone: because", "cancelled"),
        ("timeout", "timed out after 10 min (setting timeout.purge-history)", "failed"),
    ):
        row = firm.execute(
            "INSERT INTO gstjobs.runs (job, trigger, as_of, backend_pid, backend_start,"
            " query_start, stop, stop_reason, stop_requested_at, stop_requested_by)"
            " VALUES ('purge-history', 'manual', now(), 2147483647, now(), now(), %s, %s, now(),"
            " 'someone') RETURNING id",
            (stop, reason),
        ).fetchone()
        assert row is not None
        run(firm, "heartbeat", AS_OF)
        assert ledger(firm, row[0])["status"] == status
        assert ledger(firm, row[0])["error"] == reason


@pytest.mark.parametrize("seconds", ["9", "86401", "ten"])
def test_a_timeout_out_of_bounds_is_refused(
    operator: psycopg.Connection[Any], seconds: str
) -> None:
    with pytest.raises(psycopg.Error):
        operator.execute("SELECT gstjobs.set_setting('timeout.sla-check', %s)", (seconds,))
    assert operator.execute(
        "SELECT value FROM gstjobs.configuration WHERE key = 'timeout.sla-check'"
    ).fetchone() == ("600",)


def test_only_the_owner_signals_a_backend(
    operator: psycopg.Connection[Any], conn: psycopg.Connection[Any]
) -> None:
    """Operators cancel through gstjobs.cancel_job, which signals only a running run's own
    backend; gstjobs.stop_run, which signals any run's, is the owner's."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        operator.execute("SELECT gstjobs.stop_run(1, 'cancel', 'x')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        operator.execute("SELECT pg_cancel_backend(%s)", (conn.info.backend_pid,))
    # enforcing the timeouts is theirs: with nothing past its timeout, it stops nothing
    assert operator.execute("SELECT gstjobs.enforce_timeouts()").fetchone() == (0,)


def test_a_superusers_run_past_its_timeout_is_left_running_and_holds_up_no_other_start(
    firm: psycopg.Connection[Any], db: str
) -> None:
    """No role but a superuser may cancel a superuser's statement: such a run is left to run
    (reported stuck), and every other run still starts."""
    add_task(firm, 1, sla_due_at=DUE)
    firm.execute("SELECT gstjobs.set_setting('timeout.sla-check', '10')")
    with held_run(db, superuser=True) as (held, _holder, run_id):
        time.sleep(11)
        run(firm, "heartbeat", AS_OF)  # its start looked at the overdue run, and went on
        still = ledger(firm, run_id)
        assert still["status"] == "running" and still["stop"] is None
    ended = wait_for_end(firm, run_id)
    assert held.error is None and ended["status"] == "succeeded"
    assert ended["counts"]["sla-breach.tasks"] == 1

"""Overlap: 50 manual runs started together and pg_cron's own tick of the same job give one
set of effects; every run but one is recorded as skipped."""

import threading
from typing import Any

import psycopg
import pytest

from tests.conftest import wait_until
from tests.integration.conftest import FIRM
from tests.reliability.tripwire import TRIP_LOCK, TRIPWIRE

RUNS = 50
# three tasks past their SLA (and due time): each is found once, whoever runs
BREACHED = """
INSERT INTO litigation.tasks (tenant_id, id, case_id, title, assignee_id, due_at, sla_due_at) VALUES
    (1, 1, 1, 'Reply to SCN', 3, now() - interval '2 hours', now() - interval '3 hours'),
    (1, 2, 1, 'Collect invoices', 3, now() - interval '2 hours', now() - interval '3 hours'),
    (1, 3, 2, 'Paper book', 2, now() - interval '2 hours', now() - interval '3 hours');
"""


def set_cron_active(conn: psycopg.Connection[Any], active: bool) -> None:
    conn.execute(
        "UPDATE cron.job SET active = %s WHERE jobname = 'sla-check' AND username = 'gstjobs_runner'",
        (active,),
    )


@pytest.mark.slow
def test_fifty_manual_runs_and_the_cron_tick_do_the_work_once(cron_db: str) -> None:
    setup = psycopg.connect(cron_db, autocommit=True)
    holder = psycopg.connect(cron_db, autocommit=True)
    first_run = setup.execute("SELECT coalesce(max(id), 0) FROM gstjobs.runs").fetchone()
    assert first_run is not None
    try:
        # pg_cron waits while the stage is set; the first run to get the job's lock will stop
        # at its first notification, on a lock this test holds
        set_cron_active(setup, False)
        setup.execute(TRIPWIRE.encode())
        setup.execute(
            "CREATE TRIGGER tripwire BEFORE INSERT ON gstjobs.notifications"
            " FOR EACH ROW EXECUTE FUNCTION tripwire.trip('1')"
        )
        holder.execute("SELECT pg_advisory_lock(%s)", (TRIP_LOCK,))
        setup.execute(FIRM.encode())
        setup.execute(BREACHED.encode())

        start = threading.Barrier(RUNS)
        errors: list[BaseException] = []

        def manual() -> None:
            try:
                with psycopg.connect(cron_db, autocommit=True) as conn:
                    start.wait(30)
                    conn.execute("CALL gstjobs.run_job('sla-check', reason => 'overlap test')")
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=manual) for _ in range(RUNS)]
        for thread in threads:
            thread.start()
        # one run holds the job and waits at the tripwire; the other 49 return, skipped
        wait_until(
            cron_db,
            "SELECT 1 FROM gstjobs.runs WHERE id > %s AND trigger = 'manual'"
            " HAVING count(*) FILTER (WHERE status = 'skipped') = %s"
            " AND count(*) FILTER (WHERE status = 'running') = 1",
            (first_run[0], RUNS - 1),
        )
        # now pg_cron's tick of the same job, at the next minute
        set_cron_active(setup, True)
        cron_run = wait_until(
            cron_db,
            "SELECT status FROM gstjobs.runs WHERE id > %s AND trigger = 'cron' AND job = 'sla-check'",
            (first_run[0],),
            90,
        )
        assert cron_run == ("skipped",)
        holder.execute("SELECT pg_advisory_unlock(%s)", (TRIP_LOCK,))
        for thread in threads:
            thread.join(60)
        assert errors == []

        ledger = dict(
            setup.execute(
                "SELECT trigger || ':' || status, count(*) FROM gstjobs.runs"
                " WHERE id > %s AND job = 'sla-check' GROUP BY 1",
                (first_run[0],),
            ).fetchall()
        )
        assert ledger["manual:succeeded"] == 1 and ledger["manual:skipped"] == RUNS - 1
        assert ledger["cron:skipped"] >= 1
        # one set of effects: each task found once, its assignee told once per channel
        notes = setup.execute(
            "SELECT kind, recipient, count(*) FROM gstjobs.notifications"
            " WHERE kind IN ('sla-breach', 'overdue') GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        assert notes == [
            ("overdue", "+919800000003", 2),
            ("overdue", "aarav@mehta.example.in", 2),
            ("overdue", "rohan@mehta.example.in", 1),
            ("sla-breach", "+919800000003", 2),
            ("sla-breach", "aarav@mehta.example.in", 2),
            ("sla-breach", "rohan@mehta.example.in", 1),
        ]
    finally:
        set_cron_active(setup, True)
        holder.close()
        setup.execute("DROP SCHEMA IF EXISTS tripwire CASCADE")
        setup.execute("DELETE FROM gstjobs.notifications")
        # the local-time jobs' ticks meanwhile may have taken today's slots of these firms
        setup.execute("DELETE FROM gstjobs.slots")
        setup.execute("TRUNCATE litigation.tenants CASCADE")
        setup.close()

"""firm list, add, disable and enable through Click, as a provisioner; and what a disabled firm
gets from the jobs (nothing new) and keeps (its data)."""

import threading
from typing import Any

import psycopg
import pytest

from tests.cli.conftest import Invoke, as_json
from tests.conftest import as_login, login_role
from tests.integration.conftest import LONDON, at, notifications, run
from tests.integration.test_firm_isolation import AS_OF, WORK

PROVISIONER = "gstjobs_test_provisioner"


@pytest.fixture
def provisioner(db: str, server: str) -> str:
    """The DSN of a login that is only a member of gstjobs_provisioner."""
    return as_login(db, login_role(server, PROVISIONER, "gstjobs_provisioner"))


def audit(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, details ->> 'firm_id', reason FROM gstjobs.audit_log ORDER BY id"
    ).fetchall()


def test_a_provisioner_adds_lists_disables_and_enables_a_firm(
    gstjobs: Invoke, provisioner: str, conn: psycopg.Connection[Any]
) -> None:
    assert "no firms yet" in gstjobs("firm", "list", dsn=provisioner).stdout
    added = as_json(
        gstjobs(
            "firm", "add", "Mehta & Associates", "--timezone", "Europe/London", "--whatsapp",
            "--email-from", "notices@mehta.example.in", "--reason", "signed 1 Dec",
            "--format", "json", dsn=provisioner,
        )
    )  # fmt: skip
    firm = added["id"]
    assert added == {
        "id": firm, "name": "Mehta & Associates", "timezone": "Europe/London",
        "whatsapp_enabled": True,
    }  # fmt: skip
    [listed] = as_json(gstjobs("firm", "list", "--format", "json", dsn=provisioner))
    assert (listed["name"], listed["email_from"], listed["disabled_at"]) == (
        "Mehta & Associates", "notices@mehta.example.in", None,
    )  # fmt: skip
    assert gstjobs("firm", "disable", str(firm), "--reason", "contract ended", dsn=provisioner)
    assert gstjobs("firm", "disable", str(firm), dsn=provisioner).stdout.strip() == (
        f"firm {firm} was disabled"  # a second time changes nothing and is not audited
    )
    [listed] = as_json(gstjobs("firm", "list", "--format", "json", dsn=provisioner))
    assert listed["disabled_at"] is not None
    # operators see the firms, too
    assert as_json(gstjobs("firm", "list", "--format", "json"))[0]["id"] == firm
    enabled = gstjobs("firm", "enable", str(firm), dsn=provisioner)
    assert enabled.exit_code == 0 and enabled.stdout.strip() == f"firm {firm} enabled"
    assert audit(conn) == [
        (PROVISIONER, "firm.add", str(firm), "signed 1 Dec"),
        (PROVISIONER, "firm.disable", str(firm), "contract ended"),
        (PROVISIONER, "firm.enable", str(firm), None),
    ]


def test_only_a_provisioner_adds_or_disables_a_firm(
    gstjobs: Invoke, firm: psycopg.Connection[Any]
) -> None:
    for args in (("firm", "add", "Another & Co"), ("firm", "disable", "1")):
        refused = gstjobs(*args)  # as an operator
        assert refused.exit_code == 1 and "permission denied" in refused.stderr, refused.output
    assert firm.execute("SELECT count(*) FROM litigation.tenants").fetchone() == (2,)
    assert firm.execute(
        "SELECT count(*) FROM litigation.tenants WHERE disabled_at IS NOT NULL"
    ).fetchone() == (0,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--timezone", "Asia/Bombayy"), "unknown time zone 'Asia/Bombayy'"),
        (("--email-from", "notices at mehta"), "violates check constraint"),
        (("--reply-to", "a@b.in, c@d.in"), "violates check constraint"),
    ],
)
def test_a_bad_firm_is_refused_and_adds_nothing(
    gstjobs: Invoke,
    provisioner: str,
    conn: psycopg.Connection[Any],
    args: tuple[str, ...],
    message: str,
) -> None:
    result = gstjobs("firm", "add", "Mehta & Associates", *args, dsn=provisioner)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert conn.execute("SELECT count(*) FROM litigation.tenants").fetchone() == (0,)
    assert audit(conn) == []


def test_a_firm_name_taken_or_a_firm_unknown_is_refused(
    gstjobs: Invoke, provisioner: str, firm: psycopg.Connection[Any]
) -> None:
    # the fixture inserted firms 1 and 2 with their own ids: the next one added is firm 3
    again = gstjobs("firm", "add", " mehta & associates, MUMBAI", dsn=provisioner)
    assert again.exit_code == 2, again.output
    assert "a firm named 'Mehta & Associates, Mumbai' exists: firm 1" in again.stderr
    added = gstjobs("firm", "add", "Iyer Tax Chambers", dsn=provisioner)
    assert added.stdout.startswith("firm 3 added: Iyer Tax Chambers"), added.output
    unknown = gstjobs("firm", "disable", "99", dsn=provisioner)
    assert unknown.exit_code == 2 and "no firm 99" in unknown.stderr
    assert firm.execute("SELECT count(*) FROM litigation.tenants").fetchone() == (3,)


@pytest.mark.parametrize("job", ["sla-check", "hearing-reminders", "deadline-alerts"])
def test_a_disabled_firm_gets_no_new_work_and_keeps_its_data(
    gstjobs: Invoke, provisioner: str, firm: psycopg.Connection[Any], job: str
) -> None:
    firm.execute(WORK)
    assert gstjobs("firm", "disable", "2", dsn=provisioner).exit_code == 0
    run(firm, job, AS_OF[job])
    assert {n["tenant_id"] for n in notifications(firm)} == {1}
    kept = firm.execute("SELECT count(*) FROM litigation.cases WHERE tenant_id = 2").fetchone()
    assert kept == (1,)
    # enabled again, the next run does its work (for a local-time job: within the catch-up)
    assert gstjobs("firm", "enable", "2", dsn=provisioner).exit_code == 0
    run(firm, job, AS_OF[job])
    assert {n["tenant_id"] for n in notifications(firm)} == {1, 2}


def test_a_disabled_firm_gets_no_analytics_snapshot(
    gstjobs: Invoke, provisioner: str, firm: psycopg.Connection[Any]
) -> None:
    assert gstjobs("firm", "disable", "1", dsn=provisioner).exit_code == 0
    run(firm, "analytics-snapshot", at("2026-11-21 00:00", LONDON))
    snapshots = "SELECT tenant_id FROM gstjobs.analytics_snapshots ORDER BY tenant_id"
    assert firm.execute(snapshots).fetchall() == [(2,)]
    assert gstjobs("firm", "enable", "1", dsn=provisioner).exit_code == 0
    run(firm, "analytics-snapshot", at("2026-11-21 00:05", LONDON))
    assert firm.execute(snapshots).fetchall() == [(1,), (2,)]


def test_two_adds_of_one_name_at_once_make_one_firm(db: str, provisioner: str) -> None:
    with (
        psycopg.connect(provisioner) as first,
        psycopg.connect(provisioner, autocommit=True) as second,
    ):
        first.execute("SELECT gstjobs.add_firm('Iyer Legal')")  # not committed yet
        outcome: list[BaseException | None] = []

        def add() -> None:
            try:
                second.execute("SELECT gstjobs.add_firm(' iyer legal')")
                outcome.append(None)
            except psycopg.Error as error:
                outcome.append(error)

        racer = threading.Thread(target=add)
        racer.start()
        racer.join(1.0)
        assert racer.is_alive()  # waiting for the first to commit
        first.commit()
        racer.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], psycopg.errors.DuplicateObject)
    with psycopg.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM litigation.tenants WHERE lower(btrim(name)) = 'iyer legal'"
        ).fetchone() == (1,)

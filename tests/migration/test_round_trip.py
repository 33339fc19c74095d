"""Migrations: upgrade → downgrade base → upgrade gives the schema of a fresh upgrade, and
downgrade leaves nothing of gstjobs behind."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import CRON_DB, JOBS, PORT, ROOT, alembic
from tests.integration.conftest import FIRM, FIRM_DATA


def schema_dump(dsn: str) -> str:
    dump = subprocess.run(
        ["pg_dump", "--schema-only", dsn], capture_output=True, text=True, check=True
    ).stdout
    # pg_dump 15.14+ fences its output with \restrict KEY lines, a new random key each time.
    return "\n".join(
        line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def toolkit_leftovers(dsn: str) -> dict[str, list[object]]:
    """Whatever of gstjobs is still in the database, by kind."""
    with psycopg.connect(dsn) as conn:
        found: dict[str, list[object]] = {}
        queries = {
            "schemas": "SELECT nspname FROM pg_namespace WHERE nspname IN ('gstjobs', 'litigation')",
            "objects owned by toolkit roles": """
                SELECT classid::regclass || ' ' || objid FROM pg_shdepend
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND refobjid IN (SELECT oid FROM pg_roles WHERE rolname LIKE 'gstjobs\\_%')""",
            "tables": "SELECT relname FROM pg_class WHERE relname LIKE 'gstjobs%'",
            "extensions": "SELECT extname FROM pg_extension WHERE extname IN ('pg_cron', 'plpython3u')",
        }
        for kind, query in queries.items():
            found[kind] = [row[0] for row in conn.execute(query)]
        return found


def test_round_trip_matches_fresh_upgrade_and_downgrade_removes_everything(cron_db: str) -> None:
    # gstjobs_cron was made from the freshly upgraded template: this is a fresh upgrade.
    fresh = schema_dump(cron_db)
    assert "CREATE TABLE litigation.tasks" in fresh

    with psycopg.connect(cron_db) as conn:
        ours = [
            r[0]
            for r in conn.execute("SELECT jobid FROM cron.job WHERE username = 'gstjobs_runner'")
        ]
        assert len(ours) == len(JOBS)
    downgrade_started = datetime.now(UTC)
    alembic(cron_db, "downgrade", "base")
    leftovers = toolkit_leftovers(cron_db)
    assert leftovers == {
        "schemas": [],
        "objects owned by toolkit roles": [],
        "tables": [],
        # pg_cron stays on purpose: its running scheduler would lose track of a re-created
        # job table until the server restarts (docs/MIGRATIONS.md)
        "extensions": ["pg_cron"],
    }
    with psycopg.connect(cron_db) as conn:
        assert conn.execute("SELECT jobname, username FROM cron.job").fetchall() == []
        # the toolkit's run history went too (pg_cron's launcher may still log a run of a job
        # it had not yet seen removed: such a row starts after the downgrade began)
        assert (
            conn.execute(
                "SELECT runid FROM cron.job_run_details WHERE jobid = ANY(%s) AND start_time < %s",
                (ours, downgrade_started),
            ).fetchall()
            == []
        )

    alembic(cron_db, "upgrade", "head")
    assert schema_dump(cron_db) == fresh
    # at head already: the views and functions are re-applied from sql/, to the same schema
    alembic(cron_db, "upgrade", "head")
    assert schema_dump(cron_db) == fresh
    with psycopg.connect(cron_db) as conn:
        jobs = conn.execute(
            "SELECT jobname, username, database, command FROM cron.job ORDER BY jobname"
        ).fetchall()
    assert jobs == [(n, "gstjobs_runner", CRON_DB, f"CALL gstjobs.run_job('{n}')") for n in JOBS]


def test_downgrade_removes_toolkit_cron_jobs_and_keeps_others(db: str, cron_db: str) -> None:
    # Another user's cron job in the same database must survive gstjobs' removal.
    with psycopg.connect(cron_db, autocommit=True) as conn:
        conn.execute("SELECT cron.schedule('someone-elses-job', '0 3 * * *', 'SELECT 1')")
    try:
        alembic(cron_db, "downgrade", "base")
        with psycopg.connect(cron_db) as conn:
            names = [r[0] for r in conn.execute("SELECT jobname FROM cron.job ORDER BY jobname")]
        assert names == ["someone-elses-job"]
        assert toolkit_leftovers(cron_db)["extensions"] == ["pg_cron"]
    finally:
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute("SELECT cron.unschedule('someone-elses-job')")
        alembic(cron_db, "upgrade", "head")


@pytest.mark.parametrize("login", ["postgres", "not_a_superuser"])
def test_upgrade_that_cannot_work_says_why_first_and_changes_nothing(
    server: str, login: str
) -> None:
    """In a database pg_cron does not serve, or as a login that is not a superuser: each reason
    one line with its fix, no traceback, nothing created (checked before anything changes)."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS not_the_cron_db")
        conn.execute("CREATE DATABASE not_the_cron_db")
        conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'not_a_superuser')"
            " THEN CREATE ROLE not_a_superuser LOGIN; END IF; END $$"
        )
    target = f"postgresql://{login}@127.0.0.1:{PORT}/not_the_cron_db"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"dsn={target}", "upgrade", "head"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert result.returncode != 0 and "Traceback" not in result.stderr
        said = result.stderr.strip().splitlines()[-2:]
        if login == "postgres":
            assert said == [
                "gstjobs: pg_cron works in this database: no (pg_cron works in database"
                " gstjobs_cron; this is not_the_cron_db)",
                "  fix: set cron.database_name = 'not_the_cron_db' in postgresql.conf and"
                " restart, or install gstjobs into gstjobs_cron",
            ]
        else:
            assert said[0] == (
                "gstjobs: a superuser installs it: no (connected as not_a_superuser,"
                " not a superuser)"
            )
        with psycopg.connect(target) as conn:
            assert conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname IN ('gstjobs', 'litigation')"
            ).fetchone() == (0,)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("DROP DATABASE not_the_cron_db WITH (FORCE)")


def test_doctor_preflight_checks_a_server_before_installing(server: str, cron_db: str) -> None:
    from click.testing import CliRunner
    from gstjobs.main import cli

    ready = CliRunner().invoke(cli, ["--dsn", cron_db, "doctor", "--preflight"])
    assert ready.exit_code == 0 and "7 of 7 checks passed" in ready.stdout
    elsewhere = CliRunner().invoke(cli, ["--dsn", server, "doctor", "--preflight"])
    assert elsewhere.exit_code == 1
    assert "FAIL  pg_cron works in this database" in elsewhere.stdout


def test_one_step_down_keeps_the_firms_deadlines_and_up_again_restores_head(cron_db: str) -> None:
    fresh = schema_dump(cron_db)
    with psycopg.connect(cron_db, autocommit=True) as conn:
        conn.execute(FIRM.encode())
        conn.execute(
            "INSERT INTO litigation.case_events (tenant_id, case_id, kind, event_on)"
            " VALUES (1, 1, 'order_communicated', '2026-08-31')"
        )
    try:
        alembic(cron_db, "downgrade", "0001")
        with psycopg.connect(cron_db) as conn:
            # the computed deadlines stay, as plain deadlines; the events and rules go
            assert conn.execute(
                "SELECT kind, due_on::text FROM litigation.deadlines ORDER BY kind"
            ).fetchall() == [
                ("Appeal to Appellate Authority", "2026-11-28"),
                ("Payment of the demand", "2026-11-28"),
            ]
            assert conn.execute(
                "SELECT to_regclass('litigation.case_events'), to_regclass('gstjobs.deadline_rules')"
            ).fetchone() == (None, None)
        alembic(cron_db, "upgrade", "head")
        assert schema_dump(cron_db) == fresh
    finally:
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute("TRUNCATE litigation.tenants CASCADE")


def test_claim_index_revision_steps_down_to_the_old_index_and_up_again(cron_db: str) -> None:
    fresh = schema_dump(cron_db)
    indexes = (
        "SELECT indexname FROM pg_indexes WHERE tablename = 'notifications'"
        " AND indexname IN ('notifications_due_idx', 'notifications_claim_idx')"
    )
    alembic(cron_db, "downgrade", "0002")
    with psycopg.connect(cron_db) as conn:
        assert conn.execute(indexes).fetchall() == [("notifications_due_idx",)]
    alembic(cron_db, "upgrade", "head")
    with psycopg.connect(cron_db) as conn:
        assert conn.execute(indexes).fetchall() == [("notifications_claim_idx",)]
    assert schema_dump(cron_db) == fresh


def test_limits_over_rows_that_break_them_are_kept_for_new_writes_and_named(
    cron_db: str,
) -> None:
    """A database at 0004 whose firm stored a title with a line break and an address the email
    package refuses: upgrading to 0005 changes no row, keeps those two limits NOT VALID (new
    writes are checked), says so, and doctor names them; the rest are validated."""
    fresh = schema_dump(cron_db)
    try:
        alembic(cron_db, "downgrade", "0004")
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute(FIRM_DATA.encode())  # at 0004: no consent records yet
            conn.execute(
                "INSERT INTO litigation.tasks (tenant_id, id, case_id, title)"
                " VALUES (1, 1, 1, E'Reply\\r\\nBcc: spy@evil.example')"
            )
            conn.execute("UPDATE litigation.tenants SET email_from = 'a@[b' WHERE id = 2")
        upgraded = alembic(cron_db, "upgrade", "head")
        notices = upgraded.stderr + upgraded.stdout
        with psycopg.connect(cron_db, autocommit=True) as conn:
            assert conn.execute("SELECT title FROM litigation.tasks").fetchone() == (
                "Reply\r\nBcc: spy@evil.example",
            )
            pending = conn.execute(
                "SELECT conname FROM pg_constraint WHERE connamespace = 'litigation'::regnamespace"
                " AND contype = 'c' AND NOT convalidated ORDER BY 1"
            ).fetchall()
            assert pending == [("tasks_title_plain",), ("tenants_email_from_address",)]
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute("UPDATE litigation.tasks SET title = E'Again\\n' WHERE id = 1")
            doctor = dict(
                (r[0], (r[1], r[2]))
                for r in conn.execute("SELECT name, ok, detail FROM gstjobs.doctor_facts()")
            )
        assert "1 row(s) of litigation.tasks break tasks_title_plain" in notices, notices
        ok, detail = doctor["firm data within limits"]
        assert not ok and "tasks_title_plain" in detail and "tenants_email_from_address" in detail
        # corrected, validated: the schema is a fresh upgrade's again
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute("UPDATE litigation.tasks SET title = 'Reply to SCN'")
            conn.execute("UPDATE litigation.tenants SET email_from = NULL")
            conn.execute("ALTER TABLE litigation.tasks VALIDATE CONSTRAINT tasks_title_plain")
            conn.execute(
                "ALTER TABLE litigation.tenants VALIDATE CONSTRAINT tenants_email_from_address"
            )
        assert schema_dump(cron_db) == fresh
    finally:
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute("TRUNCATE litigation.tenants CASCADE")


def test_the_offline_upgrade_script_is_the_online_upgrade(cron_db: str, tmp_path: Path) -> None:
    """`alembic upgrade head --sql` writes the whole upgrade (the revisions' SQL, the re-applied
    views and functions, PL/Python bodies included); applied with psql to an empty database it
    leaves the catalog an online upgrade leaves."""
    online = schema_dump(cron_db)
    script = tmp_path / "upgrade.sql"
    written = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    script.write_text(written.stdout)
    assert (
        "$plpy$" in written.stdout
        and "CREATE OR REPLACE PROCEDURE gstjobs.run_job" in written.stdout
    )
    alembic(cron_db, "-x", "drop-data=yes", "downgrade", "base")
    try:
        applied = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", cron_db, "-f", str(script)],
            capture_output=True,
            text=True,
        )
        assert applied.returncode == 0, applied.stderr[-2000:]
        assert schema_dump(cron_db) == online
    finally:
        # back to an online upgrade, whatever happened
        with psycopg.connect(cron_db) as conn:
            at_head = conn.execute("SELECT to_regclass('gstjobs.jobs') IS NOT NULL").fetchone()
        if at_head != (True,):
            alembic(cron_db, "upgrade", "head")


def test_notified_dates_move_off_the_rules_and_back(cron_db: str) -> None:
    """0009 moves a rule's transitional date into gstjobs.notified_dates (the shipped Tribunal
    date corrected to S.O. 4220(E)'s 1 April 2026; a firm's own rule's date kept, cited as the
    rule's), and its downgrade puts them back on the rules."""
    fresh = schema_dump(cron_db)
    own_rule = (
        "INSERT INTO gstjobs.deadline_rules (key, name, section, source, trigger_event, period,"
        " unit, binds, forum, rolls_forward, later_of, later_of_for_events_before, notes)"
        " VALUES ('firm-appeal', 'Our own appeal date', '112(1)', 'firm practice',"
        " 'appellate_order_communicated', 2, 'months', 'taxpayer', 'tribunal', true,"
        " '2026-05-31', '2026-02-01', 'the partners'' date')"
    )
    try:
        alembic(cron_db, "downgrade", "0008")
        with psycopg.connect(cron_db, autocommit=True) as conn:
            assert conn.execute(
                "SELECT later_of::text, later_of_for_events_before::text"
                " FROM gstjobs.deadline_rules WHERE key = 'appeal-112'"
            ).fetchone() == ("2026-06-30", "2024-04-01")
            conn.execute(own_rule)
        alembic(cron_db, "upgrade", "head")
        with psycopg.connect(cron_db, autocommit=True) as conn:
            moved = conn.execute(
                "SELECT rule_key, notification, for_events_before::text, last_day::text,"
                " operative_words FROM gstjobs.notified_dates"
                " WHERE rule_key IN ('appeal-112', 'firm-appeal') ORDER BY rule_key"
            ).fetchall()
            assert moved == [
                ("appeal-112", "S.O. 4220(E)", "2026-04-01", "2026-06-30", moved[0][4]),
                ("firm-appeal", "as recorded on the rule", "2026-02-01", "2026-05-31",
                 "the partners' date"),
            ]  # fmt: skip
            # and the firm's rule uses it: an order of 10 Jan 2026, 2 months = 10 Mar 2026; the
            # notified 31 May 2026 is later, and a Sunday: the last day is Mon 1 Jun
            conn.execute(FIRM.encode())
            conn.execute(
                "INSERT INTO litigation.case_events (tenant_id, case_id, kind, event_on)"
                " VALUES (1, 2, 'appellate_order_communicated', '2026-01-10')"
            )
            assert conn.execute(
                "SELECT statutory_on::text, computation -> 'notified' ->> 'notification'"
                " FROM litigation.deadlines WHERE rule_key = 'firm-appeal'"
            ).fetchone() == ("2026-06-01", "as recorded on the rule")
            conn.execute("TRUNCATE litigation.tenants CASCADE")
        alembic(cron_db, "downgrade", "0008")
        with psycopg.connect(cron_db, autocommit=True) as conn:
            assert conn.execute(
                "SELECT key, later_of::text, later_of_for_events_before::text"
                " FROM gstjobs.deadline_rules WHERE later_of IS NOT NULL ORDER BY key"
            ).fetchall() == [
                ("appeal-112", "2026-06-30", "2024-04-01"),
                ("firm-appeal", "2026-05-31", "2026-02-01"),
            ]
            conn.execute("DELETE FROM gstjobs.deadline_rules WHERE key = 'firm-appeal'")
        alembic(cron_db, "upgrade", "head")
        assert schema_dump(cron_db) == fresh
    finally:
        alembic(cron_db, "upgrade", "head")  # from wherever a failure left it
        with psycopg.connect(cron_db, autocommit=True) as conn:
            conn.execute("TRUNCATE litigation.tenants CASCADE")
            conn.execute("DELETE FROM gstjobs.notified_dates WHERE rule_key = 'firm-appeal'")
            conn.execute("DELETE FROM gstjobs.deadline_rules WHERE key = 'firm-appeal'")

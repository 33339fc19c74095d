"""docs/INTEGRATION.md's worked example, run as written: a firm provisioned, the application's
login writing its data for that firm in one transaction, and gstjobs's work reaching it."""

import re
from typing import Any

import psycopg

from tests.conftest import ROOT, as_login, login_role


def example(name: str, firm: str) -> str:
    """docs/INTEGRATION.md's example of that name, for this database's firm (it names 42)."""
    text = (ROOT / "docs" / "INTEGRATION.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- example: {name} -->\s*```sql\n(.*?)```", text, re.S)
    assert found is not None, f"docs/INTEGRATION.md lost its {name} example"
    script = found.group(1).replace("'42'", f"'{firm}'").replace("(42,", f"({firm},")
    return script.replace("tenant_id = 42 ", f"tenant_id = {firm} ").replace(
        "id = 42;", f"id = {firm};"
    )


def test_the_integration_example_runs_as_documented(
    db: str, conn: psycopg.Connection[Any], server: str
) -> None:
    provisioner = login_role(server, "gstjobs_test_provisioner", "gstjobs_provisioner")
    application = login_role(server, "gstjobs_test_lawfirm_app", "gstjobs_app")
    with psycopg.connect(as_login(db, provisioner), autocommit=True) as onboarding:
        firm = onboarding.execute(
            "SELECT (gstjobs.add_firm('Mehta & Associates', 'Asia/Kolkata')) ->> 'id'"
        ).fetchone()
    assert firm is not None
    script = example("firm application", firm[0])
    with psycopg.connect(as_login(db, application), autocommit=True) as app:
        app.execute(script.encode())
        # outside a transaction that names the firm, the application sees nothing
        assert app.execute("SELECT count(*) FROM litigation.tasks").fetchone() == (0,)
    conn.execute("CALL gstjobs.run_job('sla-check')")
    with psycopg.connect(as_login(db, application)) as app:
        app.execute("SELECT set_config('app.tenant_id', %s, true)", (firm[0],))
        seen = app.execute("SELECT kind, channel, recipient FROM gstjobs.notifications").fetchall()
    assert seen == [("sla-breach", "email", "priya@mehta.example.in")]

    # the WhatsApp consent example, as written: an opt-in, then an opt-out, kept
    with psycopg.connect(as_login(db, application), autocommit=True) as app:
        app.execute(example("consent", firm[0]).encode())
    told = conn.execute(
        "SELECT opted_in_how, opted_out_how, gstjobs.whatsapp_consented(c)"
        " FROM litigation.whatsapp_consents AS c"
    ).fetchall()
    assert told == [("settings page, WhatsApp reminders ticked", "replied STOP on WhatsApp", False)]

    # the choices example, as written
    with psycopg.connect(as_login(db, application), autocommit=True) as app:
        app.execute(example("choices", firm[0]).encode())
    chosen = conn.execute(
        "SELECT member_id, kind, email, whatsapp, through_quiet_hours, chosen_by,"
        " quiet_from::text, quiet_until::text FROM gstjobs.notification_choices"
        " WHERE tenant_id = %s AND chosen_by <> 'default' ORDER BY member_id NULLS FIRST, kind",
        (firm[0],),
    ).fetchall()
    assert chosen == [
        (None, "analytics-anomaly", True, False, False, "firm", "21:30:00", "07:30:00"),
        (1, "analytics-anomaly", True, False, False, "firm", "23:00:00", "06:00:00"),
        (1, "sla-breach", True, True, True, "member", "23:00:00", "06:00:00"),
    ]

"""docs/INTEGRATION.md's worked example, run as written: a firm provisioned, the application's
login writing its data for that firm in one transaction, and gstjobs's work reaching it."""

import re
from typing import Any

import psycopg

from tests.conftest import ROOT, as_login, login_role

EXAMPLE = re.compile(r"<!-- example: firm application -->\s*```sql\n(.*?)```", re.S)
CONSENT = re.compile(r"<!-- example: consent -->\s*```sql\n(.*?)```", re.S)


def test_the_integration_example_runs_as_documented(
    db: str, conn: psycopg.Connection[Any], server: str
) -> None:
    example = EXAMPLE.search((ROOT / "docs" / "INTEGRATION.md").read_text(encoding="utf-8"))
    assert example is not None, "docs/INTEGRATION.md lost its example"
    provisioner = login_role(server, "gstjobs_test_provisioner", "gstjobs_provisioner")
    application = login_role(server, "gstjobs_test_lawfirm_app", "gstjobs_app")
    with psycopg.connect(as_login(db, provisioner), autocommit=True) as onboarding:
        firm = onboarding.execute(
            "SELECT (gstjobs.add_firm('Mehta & Associates', 'Asia/Kolkata')) ->> 'id'"
        ).fetchone()
    assert firm is not None
    # the example names firm 42; this database gave the firm another id
    script = example.group(1).replace("'42'", f"'{firm[0]}'").replace("(42,", f"({firm[0]},")
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
    consent = CONSENT.search((ROOT / "docs" / "INTEGRATION.md").read_text(encoding="utf-8"))
    assert consent is not None, "docs/INTEGRATION.md lost its consent example"
    script = consent.group(1).replace("'42'", f"'{firm[0]}'").replace("(42,", f"({firm[0]},")
    script = script.replace("tenant_id = 42 ", f"tenant_id = {firm[0]} ")
    with psycopg.connect(as_login(db, application), autocommit=True) as app:
        app.execute(script.encode())
    told = conn.execute(
        "SELECT opted_in_how, opted_out_how, gstjobs.whatsapp_consented(c)"
        " FROM litigation.whatsapp_consents AS c"
    ).fetchall()
    assert told == [("settings page, WhatsApp reminders ticked", "replied STOP on WhatsApp", False)]

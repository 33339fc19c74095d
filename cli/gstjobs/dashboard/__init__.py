"""`gstjobs dashboard`: the operators' web page, served by the CLI with the operator's own DSN.

Every request connects as that login, so the database decides what the page may show and do,
exactly as for the CLI: a login outside gstjobs_operator gets an error page. Pages are rendered
on the server (Jinja2, autoescaped), charts are SVG made by pygal on the server; no script runs
in the browser. Every change (run, pause, resume, cancel, retry) is a POST carrying a CSRF
token (Flask-WTF) and a reason, and goes through the same audited functions as the CLI.

Bound to 127.0.0.1 by default. On any other address the dashboard requires an access token
that the operator chooses (`--token`, or GSTJOBS_DASHBOARD_TOKEN): a login form checks it once
and the session cookie (HttpOnly, SameSite=Strict, signed with a key made at start) carries it.
"""

import hmac
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from flask import Flask, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from psycopg.rows import dict_row

from gstjobs import ops
from gstjobs.dashboard.charts import durations_chart
from gstjobs.db import ConnectError, connect
from gstjobs.output import human_duration

# what a page shows of each job's recent runs
RECENT_RUNS = 40
DEAD_LETTERS_SHOWN = 20

# No script runs on these pages; pygal's SVG carries its own <style>.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# where a form or the login may send the browser back to: a page of the dashboard, never an
# address elsewhere ("//host", "/\\host" and the like are not among these)
OWN_PAGE = re.compile(r"/(jobs/[a-z0-9-]{1,60})?")


def own_page(target: str) -> str:
    return target if OWN_PAGE.fullmatch(target) else "/"


class NotAnOperator(Exception):
    """The DSN's login may not operate gstjobs."""


def create_app(dsn: str | None, token: str | None = None) -> Flask:
    """The dashboard for the database at dsn (None: libpq's PG* variables)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session: a page left open still works
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    CSRFProtect(app)

    @contextmanager
    def database() -> Iterator[ops.Connection]:
        with connect(dsn, autocommit=True) as raw:
            conn: ops.Connection = raw
            conn.row_factory = dict_row
            who = ops.query(conn, "dashboard-login")[0]
            if not who["operator"]:
                raise NotAnOperator(
                    f"the login {who['login']} is not a member of gstjobs_operator, so it may "
                    "not see or operate gstjobs: GRANT gstjobs_operator TO it, or start the "
                    "dashboard with an operator's DSN"
                )
            yield conn

    @app.before_request
    def check_token() -> ResponseReturnValue | None:
        if token is None or request.endpoint in ("login", "static"):
            return None
        if not session.get("authenticated"):
            return redirect(url_for("login", next=request.path))
        return None

    @app.after_request
    def harden(response: Any) -> Any:
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        if token is None:
            return redirect(url_for("overview"))
        if request.method == "POST":
            given = request.form.get("token", "")
            if hmac.compare_digest(given.encode(), token.encode()):
                session.clear()
                session["authenticated"] = True
                return redirect(own_page(request.args.get("next", "")))
            flash("That is not the dashboard's access token.")
        return render_template("login.html")

    @app.route("/")
    def overview() -> ResponseReturnValue:
        with database() as conn:
            zone = ZoneInfo(ops.ops_zone(conn))
            jobs = ops.job_overview(conn)
            stats = {s["job"]: s for s in ops.query(conn, "job-stats")}
            running = {r["job"]: r["running"] for r in ops.query(conn, "running-runs")}
            charts = {
                job["job"]: durations_chart(
                    ops.run_history(conn, job["job"], limit=RECENT_RUNS), zone, small=True
                )
                for job in jobs
            }
            outbox = ops.query(conn, "outbox-by-channel")
            dead = ops.outbox(conn, status="dead", limit=DEAD_LETTERS_SHOWN)
            health = ops.latest_health(conn)
            who = ops.query(conn, "dashboard-login")[0]
        return render_template(
            "overview.html",
            jobs=jobs,
            stats=stats,
            running=running,
            charts=charts,
            outbox=outbox,
            dead=dead,
            health=health,
            who=who,
            zone=zone,
            now=datetime.now(UTC),
        )

    @app.route("/jobs/<job>")
    def job_page(job: str) -> ResponseReturnValue:
        with database() as conn:
            zone = ZoneInfo(ops.ops_zone(conn))
            known = {j["job"]: j for j in ops.job_overview(conn)}
            if job not in known:
                abort(404, f"there is no job {job!r}; the jobs are: {', '.join(sorted(known))}")
            runs = ops.run_history(conn, job, limit=RECENT_RUNS)
            stats = {s["job"]: s for s in ops.query(conn, "job-stats")}[job]
            who = ops.query(conn, "dashboard-login")[0]
        return render_template(
            "job.html",
            job=known[job],
            runs=runs,
            stats=stats,
            chart=durations_chart(runs, zone, small=False),
            who=who,
            zone=zone,
            now=datetime.now(UTC),
        )

    def change(action: Callable[[ops.Connection, str], str]) -> ResponseReturnValue:
        """Run one audited change with the form's reason; its outcome flashed on the page
        the operator came from."""
        reason = request.form.get("reason", "").strip()
        if not reason:
            flash("Say why (the reason is kept in the audit log).", "error")
        else:
            with database() as conn:
                flash(action(conn, reason), "done")
        return redirect(own_page(request.form.get("back", "")))

    @app.post("/jobs/<job>/run")
    def run_job(job: str) -> ResponseReturnValue:
        def act(conn: ops.Connection, reason: str) -> str:
            report = ops.run_job(conn, job, reason=reason)
            ending = f": {report['error']}" if report.get("error") else ""
            return f"{job}: run {report['run_id']} {report['status']}{ending}"

        return change(act)

    @app.post("/jobs/<job>/pause")
    def pause_job(job: str) -> ResponseReturnValue:
        def act(conn: ops.Connection, reason: str) -> str:
            result = ops.set_active(conn, job, False, reason)
            return f"{job} paused" if result["changed"] else f"{job} was already paused"

        return change(act)

    @app.post("/jobs/<job>/resume")
    def resume_job(job: str) -> ResponseReturnValue:
        def act(conn: ops.Connection, reason: str) -> str:
            result = ops.set_active(conn, job, True, reason)
            return f"{job} resumed" if result["changed"] else f"{job} was already active"

        return change(act)

    @app.post("/jobs/<job>/cancel")
    def cancel_job(job: str) -> ResponseReturnValue:
        def act(conn: ops.Connection, reason: str) -> str:
            runs = ops.cancel_job(conn, job, reason, wait=5)
            return "; ".join(f"{job}: run {r['run_id']} {r['status']}" for r in runs)

        return change(act)

    @app.post("/outbox/<int:notification_id>/retry")
    def retry(notification_id: int) -> ResponseReturnValue:
        def act(conn: ops.Connection, reason: str) -> str:
            result = ops.retry_notification(conn, notification_id, reason)
            return f"notification {notification_id}: {result['old_status']} -> {result['status']}"

        return change(act)

    @app.errorhandler(NotAnOperator)
    def not_an_operator(error: NotAnOperator) -> ResponseReturnValue:
        return render_template("error.html", title="Not an operator", message=str(error)), 403

    @app.errorhandler(ConnectError)
    def unreachable(error: ConnectError) -> ResponseReturnValue:
        return render_template("error.html", title="No database", message=str(error)), 503

    @app.errorhandler(CSRFError)
    def bad_csrf(error: CSRFError) -> ResponseReturnValue:
        message = f"The form was refused: {error.description} Reload the page and try again."
        return render_template("error.html", title="Refused", message=message), 400

    @app.errorhandler(psycopg.Error)
    def database_error(error: psycopg.Error) -> ResponseReturnValue:
        # the database's own words (a refusal, a job that is not running), never a traceback
        diag = error.diag
        message = (diag.message_primary or str(error).strip().splitlines()[0]).removeprefix(
            "plpy.Error: "
        )
        if diag.message_hint:
            message += f" ({diag.message_hint})"
        status = 503 if isinstance(error, psycopg.OperationalError) else 400
        return render_template("error.html", title="The database said no", message=message), status

    @app.errorhandler(404)
    def not_found(error: Any) -> ResponseReturnValue:
        return render_template("error.html", title="Not found", message=error.description), 404

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        app.logger.exception("dashboard error")
        message = "Something went wrong; the dashboard's log (its terminal) has the details."
        return render_template("error.html", title="Error", message=message), 500

    @app.template_filter("local")
    def local(moment: datetime | None, zone: ZoneInfo) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else ""

    @app.template_filter("duration")
    def duration(value: timedelta | float | None) -> str:
        if value is None or isinstance(value, timedelta):
            return human_duration(value)
        return human_duration(timedelta(seconds=float(value)))

    return app

"""`gstjobs dashboard` in a real browser: Debian's chromium driven by Selenium, against the test
cluster, the page served as the operator (or as a login that is not one)."""

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from gstjobs.dashboard import create_app
from gstjobs.main import cli
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from werkzeug.serving import make_server

from bench.database import free_port
from tests.conftest import JOBS, ROOT, as_login, as_operator, login_role

NOBODY = "gstjobs_test_nobody"  # a login in no gstjobs role
FAILED_RED = "#c0392b"
SCREENSHOT = ROOT / "docs" / "dashboard.png"

Serve = Callable[..., str]


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1200"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """serve(dsn, token=None): the dashboard app on a free loopback port; its base URL."""
    servers = []

    def start(dsn: str, token: str | None = None) -> str:
        server = make_server("127.0.0.1", 0, create_app(dsn, token), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def job_row(browser: WebDriver, job: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'#jobs tr[data-job="{job}"]')


def act(browser: WebDriver, row: WebElement, action: str, reason: str) -> None:
    """Give a reason and press an action's button; returns once the next page has loaded."""
    row.find_element(By.NAME, "reason").send_keys(reason)
    row.find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]').click()
    wait_until_replaced(browser, row)
    WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".flash"))
    )


def a_failed_run(conn: psycopg.Connection[Any], job: str) -> None:
    conn.execute(
        "INSERT INTO gstjobs.runs (job, trigger, as_of, status, started_at, finished_at, error)"
        " VALUES (%s, 'manual', now(), 'failed', clock_timestamp(),"
        " clock_timestamp() + interval '3 s', 'the SMTP server refused the login')",
        (job,),
    )


def test_the_page_shows_every_job_with_its_chart_failures_in_red(
    conn: psycopg.Connection[Any], db: str, operator_role: str, browser: WebDriver, serve: Serve
) -> None:
    conn.execute("CALL gstjobs.run_job('heartbeat')")
    conn.execute("CALL gstjobs.run_job('sla-check')")
    a_failed_run(conn, "sla-check")
    browser.get(serve(as_operator(db)) + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    assert [r.get_attribute("data-job") for r in rows] == JOBS
    sla = job_row(browser, "sla-check")
    assert "Every minute" in sla.text and "active" in sla.text
    assert "50.0% of 2" in sla.text  # one of the two finished runs in 7 days succeeded
    # the chart: an SVG drawn on the server, one bar per run, the failed one red
    bars = sla.find_elements(By.CSS_SELECTOR, ".chart svg g.bar")
    assert len(bars) == 2
    assert [FAILED_RED in (b.get_dom_attribute("style") or "") for b in bars] == [False, True]
    assert bars[0].find_element(By.CSS_SELECTOR, "rect").size["height"] >= 0
    assert browser.find_element(By.CSS_SELECTOR, "#outbox").text.count("email") == 1
    # the job's own page: its runs with the error, and the wide chart
    sla.find_element(By.LINK_TEXT, "sla-check").click()
    runs = browser.find_element(By.ID, "runs").text
    assert "the SMTP server refused the login" in runs and "succeeded" in runs
    assert browser.find_elements(By.CSS_SELECTOR, ".chart.wide svg g.bar")
    if os.environ.get("GSTJOBS_WRITE_DOCS"):
        browser.get(serve(as_operator(db)) + "/")
        browser.save_screenshot(str(SCREENSHOT))


def test_run_creates_a_manual_run_shown_in_history(
    conn: psycopg.Connection[Any], db: str, operator_role: str, browser: WebDriver, serve: Serve
) -> None:
    browser.get(serve(as_operator(db)) + "/")
    act(browser, job_row(browser, "heartbeat"), "run", "checking the dashboard")
    assert "heartbeat: run" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    history = CliRunner().invoke(
        cli, ["--dsn", as_operator(db), "history", "heartbeat", "--format", "json"]
    )
    assert history.exit_code == 0, history.output
    assert '"trigger": "manual"' in history.output
    assert '"reason": "checking the dashboard"' in history.output
    assert conn.execute(
        "SELECT actor, reason FROM gstjobs.audit_log WHERE action = 'run' AND job = 'heartbeat'"
    ).fetchall() == [("gstjobs_test_operator", "checking the dashboard")]


def test_pause_and_resume_change_the_state(
    conn: psycopg.Connection[Any], db: str, operator_role: str, browser: WebDriver, serve: Serve
) -> None:
    browser.get(serve(as_operator(db)) + "/")
    act(browser, job_row(browser, "analytics-snapshot"), "pause", "month-end freeze")
    assert (
        "paused" in job_row(browser, "analytics-snapshot").find_element(By.CLASS_NAME, "state").text
    )
    assert conn.execute(
        "SELECT active FROM cron.job WHERE jobname = 'analytics-snapshot'"
    ).fetchone() == (False,)
    act(browser, job_row(browser, "analytics-snapshot"), "resume", "freeze over")
    assert (
        "active" in job_row(browser, "analytics-snapshot").find_element(By.CLASS_NAME, "state").text
    )
    assert conn.execute(
        "SELECT action, reason FROM gstjobs.audit_log WHERE job = 'analytics-snapshot' ORDER BY id"
    ).fetchall() == [("pause", "month-end freeze"), ("resume", "freeze over")]


def test_a_change_without_a_reason_changes_nothing(
    conn: psycopg.Connection[Any], db: str, operator_role: str, browser: WebDriver, serve: Serve
) -> None:
    base = serve(as_operator(db))
    browser.get(base + "/")
    token = browser.find_element(By.NAME, "csrf_token").get_attribute("value")
    cookie = browser.get_cookie("session")
    assert token and cookie
    # the browser's own token and session, but no reason
    status, _ = post(
        base + "/jobs/heartbeat/run", {"csrf_token": token, "reason": " "}, cookie["value"]
    )
    assert status == 302
    assert conn.execute("SELECT count(*) FROM gstjobs.runs").fetchone() == (0,)


def post(url: str, form: dict[str, str], session: str | None = None) -> tuple[int, str]:
    """A form POSTed without a browser: (status, body); redirects are not followed."""

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    if session:
        request.add_header("Cookie", f"session={session}")
    try:
        with urllib.request.build_opener(Stay).open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def test_a_post_without_the_csrf_token_is_refused(
    conn: psycopg.Connection[Any], db: str, operator_role: str, serve: Serve
) -> None:
    base = serve(as_operator(db))
    for action in ("run", "pause", "cancel"):
        status, page = post(f"{base}/jobs/heartbeat/{action}", {"reason": "forged"})
        assert status == 400, page
        assert "The CSRF token is missing" in page and "Traceback" not in page
    assert conn.execute("SELECT count(*) FROM gstjobs.runs").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM gstjobs.audit_log").fetchone() == (0,)
    assert conn.execute("SELECT bool_and(active) FROM cron.job").fetchone() == (True,)


def test_retry_requeues_a_dead_letter(
    conn: psycopg.Connection[Any], db: str, operator_role: str, browser: WebDriver, serve: Serve
) -> None:
    row = conn.execute(
        "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, subject, body,"
        " status, attempts, last_error, dedupe_key) VALUES (1, 'sla-breach', 'email',"
        " 'a@b.in', 'S', 'B', 'dead', 8, 'SMTP 550 mailbox unavailable', 'k1') RETURNING id"
    ).fetchone()
    assert row is not None
    browser.get(serve(as_operator(db)) + "/")
    assert "SMTP 550 mailbox unavailable" in browser.find_element(By.ID, "dead").text
    dead = browser.find_element(By.CSS_SELECTOR, f'#dead tr[data-notification="{row[0]}"]')
    act(browser, dead, "retry", "mailbox fixed")
    assert (
        f"notification {row[0]}: dead -> pending"
        in browser.find_element(By.CSS_SELECTOR, ".flash").text
    )
    assert conn.execute("SELECT status FROM gstjobs.notifications").fetchone() == ("pending",)


def test_a_login_that_is_not_an_operator_sees_an_error_page(
    db: str, server: str, browser: WebDriver, serve: Serve
) -> None:
    login_role(server, NOBODY)
    browser.get(serve(as_login(db, NOBODY)) + "/")
    message = browser.find_element(By.ID, "message").text
    assert f"the login {NOBODY} is not a member of gstjobs_operator" in message
    assert "Traceback" not in browser.page_source
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(serve(as_login(db, NOBODY)) + "/", timeout=30)
    assert refused.value.code == 403
    refused.value.close()


def test_an_access_token_guards_the_page_when_set(
    db: str, operator_role: str, browser: WebDriver, serve: Serve
) -> None:
    base = serve(as_operator(db), token="a-long-enough-token")
    browser.delete_all_cookies()
    browser.get(base + "/jobs/heartbeat")
    assert browser.current_url.startswith(base + "/login")
    sign_in(browser, "a-wrong-token-of-length")
    assert "not the dashboard's access token" in browser.page_source
    assert not browser.find_elements(By.ID, "runs")
    sign_in(browser, "a-long-enough-token")
    assert browser.current_url == base + "/jobs/heartbeat"
    assert browser.find_element(By.ID, "runs")


def sign_in(browser: WebDriver, token: str) -> None:
    """Give the login form a token; returns once the next page has loaded."""
    form = browser.find_element(By.CSS_SELECTOR, "form.login")
    form.find_element(By.NAME, "token").send_keys(token)
    form.find_element(By.TAG_NAME, "button").click()
    wait_until_replaced(browser, form)


def wait_until_replaced(browser: WebDriver, element: WebElement) -> None:
    """Returns once the page that held element has been replaced. While it is replaced,
    chromedriver may answer a look at the old element with an "unknown error" (its node no
    longer in the document) before "stale": look again."""
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        expected_conditions.staleness_of(element)
    )


def test_the_command_refuses_another_address_without_a_token_and_serves_loopback(
    db: str, operator_role: str
) -> None:
    refused = CliRunner().invoke(cli, ["--dsn", as_operator(db), "dashboard", "--host", "0.0.0.0"])
    assert refused.exit_code == 2
    assert "set an access token" in refused.output
    short = CliRunner().invoke(cli, ["--dsn", as_operator(db), "dashboard", "--token", "short"])
    assert short.exit_code == 2 and "at least 16 characters" in short.output
    # the real command, as an operator starts it
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gstjobs"),
            "--dsn",
            as_operator(db),
            "dashboard",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
                    body = page.read().decode()
                    headers = page.headers
                break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.2)
        assert all(job in body for job in JOBS)
        assert "script-src" not in headers["Content-Security-Policy"]  # no script allowed
        assert headers["X-Frame-Options"] == "DENY"
    finally:
        process.terminate()
        process.communicate(timeout=30)

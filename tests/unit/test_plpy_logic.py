"""The pure logic of plpy/ modules, run with a fake plpy (the real one is proven in integration/)."""

import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gstjobs.resources import load_plpy_module

from tests.unit.fake_plpy import FakePlpy


@pytest.fixture(scope="module")
def health() -> types.ModuleType:
    return load_plpy_module("health_check")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "start", "end", "ticks"),
    [
        ("* * * * *", "2026-11-20 00:00", "2026-11-20 02:00", 120),
        ("*/15 * * * *", "2026-11-20 00:00", "2026-11-21 00:00", 96),
        ("30 21 * * *", "2026-11-20 00:00", "2026-11-23 00:00", 3),
        ("0 9 * * 1-5", "2026-11-16 00:00", "2026-11-23 00:00", 5),  # Mon to Fri
        ("0 9 * * 0", "2026-11-16 00:00", "2026-11-23 00:00", 1),  # Sunday, as 0
        ("0 9 * * 7", "2026-11-16 00:00", "2026-11-23 00:00", 1),  # Sunday, as 7
        # both day fields restricted: either matches (the 1st, or any Monday)
        ("0 0 1 * 1", "2026-11-01 00:00", "2026-12-01 00:00", 6),  # the 1st and 5 Mondays
        ("5,35 8-9 * * *", "2026-11-20 00:00", "2026-11-21 00:00", 4),
        ("* * * * *", "2026-11-20 00:00:30", "2026-11-20 00:02", 1),  # starts mid-minute
    ],
)
def test_expected_ticks(health: Any, schedule: str, start: str, end: str, ticks: int) -> None:
    assert health.expected_ticks(schedule, utc(start).timestamp(), utc(end).timestamp()) == ticks


@pytest.mark.parametrize(
    "schedule", ["* * * * *", "*/15 * * * *", "30 21 * * *", "5,35 8-9 * * 1-5", "0 0 1 * 1"]
)
def test_expected_ticks_agree_with_every_minute_checked(health: Any, schedule: str) -> None:
    """Counted hour by hour, the same as checking each minute of the window against the cron
    fields, for windows that start and end anywhere in a minute or an hour."""
    minutes, hours, days, months, weekdays, dom_restricted, dow_restricted = health.parse_cron(
        schedule
    )

    def fires(moment: datetime) -> bool:
        day, weekday = moment.day in days, moment.isoweekday() % 7 in weekdays
        both = dom_restricted and dow_restricted
        return (
            moment.minute in minutes
            and moment.hour in hours
            and moment.month in months
            and ((day or weekday) if both else (day and weekday))
        )

    origin = utc("2026-11-30 07:00")
    for start_offset, length in [(0, 1440), (1, 1438), (0.5, 61), (59.5, 3000), (7.25, 0.5)]:
        start = origin + timedelta(minutes=start_offset)
        end = start + timedelta(minutes=length)
        moment = start.replace(second=0, microsecond=0)
        moment += timedelta(minutes=1) if moment < start else timedelta(0)
        brute = 0
        while moment < end:
            brute += fires(moment)
            moment += timedelta(minutes=1)
        assert health.expected_ticks(schedule, start.timestamp(), end.timestamp()) == brute, (
            start,
            end,
        )


@pytest.mark.parametrize("schedule", ["*/15 * * * * *", "61 * * * *", "", "@hourly", "0 25 * * *"])
def test_bad_cron_text_is_refused(health: Any, schedule: str) -> None:
    with pytest.raises(ValueError):
        health.parse_cron(schedule)


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("0 0 31 2 *", "never fires"),
        ("0 0 30,31 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 29 2 *", "once in four years"),
        ("*/5 * * * *\n", "no tab or line break"),
        ("*/5\t* * * *", "no tab or line break"),
        (" */5 * * * *", "single spaces"),
        ("*/5 * * * * ", "single spaces"),
        ("*/5  * * * *", "single spaces"),
        ("0 0 1 1 1;", "only digits"),
        ("0 0 \uff13 * *", "only digits"),  # a full-width 3
    ],
)
def test_schedules_that_do_not_fire_every_year_or_hide_characters_are_refused(
    health: Any, schedule: str, problem: str
) -> None:
    assert problem in health.cron_problem(schedule)


SCHEDULES = [
    "* * * * *",
    "*/15 * * * *",
    "30 21 * * *",
    "0 9 * * 1-5",
    "0 0 31 * *",
    "0 0 31 1-2 *",
    "0 0 30 2 1",  # both day fields: any Monday of February
    "0 0 29 2 *",
    "0 0 31 2 *",
    "0 0 31 4,6,9,11 *",
    "0 0 28 2 *",
    "15 3 1-7 */3 0",
]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_the_every_year_rule_agrees_with_croniter(health: Any, schedule: str) -> None:
    """A schedule is accepted exactly when croniter (the CLI's reader of schedules, which
    follows cron's rule for the two day fields) finds a run in a common year, 2027."""
    from croniter import croniter

    start = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    try:
        first = croniter(schedule, start).get_next(datetime)
        in_2027 = first.year == 2027
    except Exception:  # croniter gives up on a schedule that never fires
        in_2027 = False
    assert (health.cron_problem(schedule) is None) == in_2027


def runner_with(fake: FakePlpy) -> Any:
    runner = load_plpy_module("runner", fake)
    runner.GD = fake.GD
    return runner


def test_a_run_is_begun_then_batched_to_the_end_committing_between() -> None:
    fake = FakePlpy([(7, True)], [False, False, True])
    runner = runner_with(fake)
    assert runner.run_job("sla-check", None, None, False, None, False) == {"run_id": 7}
    assert fake.calls == [
        "begin marked",
        "commit",
        "batch 7 marked",
        "commit",
        "batch 7 marked",
        "commit",
        "batch 7 marked",
        "commit",
    ]
    # the mark lives only while run_job's code runs
    assert fake.GD == {}


def test_a_skipped_run_does_no_batch_and_a_waiting_run_asks_again() -> None:
    fake = FakePlpy([(8, False)], [])
    assert runner_with(fake).run_job("sla-check", None, None, False, None, False) == {"run_id": 8}
    assert fake.calls == ["begin marked", "commit"]

    fake = FakePlpy([(None, False), (None, False), (9, True)], [True])
    assert runner_with(fake).run_job("sla-check", None, None, False, None, True) == {"run_id": 9}
    assert fake.calls == [
        "begin marked",
        "commit",
        "pause marked",
        "begin marked",
        "commit",
        "pause marked",
        "begin marked",
        "commit",
        "batch 9 marked",
        "commit",
    ]


def test_the_mark_is_removed_when_the_run_fails() -> None:
    fake = FakePlpy([(7, True)], [])  # the batch script is empty: run_batch "fails"
    runner = runner_with(fake)
    with pytest.raises(StopIteration):
        runner.run_job("sla-check", None, None, False, None, False)
    assert fake.GD == {}


def test_the_privileged_steps_refuse_without_the_mark() -> None:
    class Refused(Exception):
        pass

    fake = FakePlpy([], [])

    def error(message: str, **kwargs: Any) -> None:
        raise Refused(message, kwargs.get("sqlstate"))

    fake.error = error  # type: ignore[attr-defined]
    runner = runner_with(fake)
    for step in (
        lambda: runner.begin("sla-check", None, None, False, None, False),
        lambda: runner.batch(7),
    ):
        with pytest.raises(Refused) as refused:
            step()
        assert refused.value.args == ("a job runs only through CALL gstjobs.run_job(...)", "42501")
    assert fake.calls == []


def test_spi_error_is_described_with_detail_and_hint() -> None:
    runner = load_plpy_module("runner", FakePlpy([], []))
    error = FakePlpy.SPIError("unknown tenant 9")
    error.spidata = (None, "no such firm", "list firms first")
    assert (
        runner.describe(error) == "unknown tenant 9\nDETAIL: no such firm\nHINT: list firms first"
    )


@pytest.mark.parametrize(
    ("run_seconds", "to_next_tick", "claiming"),
    [
        (60, None, 60),  # by hand: dispatch.run_seconds
        (
            60,
            59.95,
            59.65,
        ),  # pg_cron's run, started 50 ms after its tick: until 0.3 s before the next
        (30, 59.95, 30),  # a shorter setting holds
        (60, 1.2, 60),  # started too late for a second of claiming: the setting, as by hand
        # never past the run's timeout (75 s) less a channel's (10 s), the send times taken
        # ahead (1 s) and 2 s
        (3000, None, 62),
    ],
)
def test_a_dispatch_run_claims_until_just_before_the_next_tick(
    run_seconds: int, to_next_tick: float | None, claiming: float
) -> None:
    dispatch = load_plpy_module("dispatch")
    settings = {
        "dispatch.run_seconds": str(run_seconds),
        "timeout.dispatch-notifications": "75",
        "smtp.timeout_seconds": "10",
        "whatsapp.timeout_seconds": "5",
    }
    assert dispatch.claiming_seconds(settings, to_next_tick) == pytest.approx(claiming)


def test_whatsapp_parameters_are_one_line_and_fit_the_template() -> None:
    """WhatsApp refuses a parameter with a line break, a tab or more than four spaces in a row
    (error 132018), and a body over 1,024 characters: what a firm wrote, and the jobs' own
    two-line notes (a late slot, a deadline's basis), go on one line, the longest cut first."""
    from gstjobs.resources import plpy_source

    sender: dict[str, Any] = {"__name__": "sender"}
    exec(compile(plpy_source("sender"), "plpy/sender.py", "exec"), sender)
    params = {
        "late": "\n\n(This message was due at 08:00 and is sent late, at 08:40, after a delay.)",
        "title": "Appeal\tagainst   the      order " + "x" * 900,
        "client": "Mehta  Traders",
        "when": "tomorrow",
        "basis": "\r\nSection 107(1):\u2028three months from the order",
    }
    parameters = sender["template_parameters"](params)
    texts = {p["parameter_name"]: p["text"] for p in parameters}
    assert [p["parameter_name"] for p in parameters] == sorted(params)
    for text in texts.values():
        assert "\n" not in text and "\t" not in text and "\r" not in text and "  " not in text
        assert "\u2028" not in text and len(text) <= sender["PARAMETER_CHARS"]
    assert sum(len(t) for t in texts.values()) <= sender["PARAMETERS_CHARS"]
    # short values whole, the long one cut and marked
    assert texts["client"] == "Mehta Traders" and texts["when"] == "tomorrow"
    assert texts["basis"] == "Section 107(1): three months from the order"
    assert texts["title"].startswith("Appeal against the order x") and texts["title"][-1] == "…"
    # nothing is sent empty: WhatsApp refuses an empty parameter
    blank = sender["template_parameters"]({"late": "", "basis": " \n ", "owner": None})
    assert [p["text"] for p in blank] == ["-", "-", "-"]
    many = sender["template_parameters"]({f"p{i}": "y" * 300 for i in range(12)})
    assert sum(len(p["text"]) for p in many) <= sender["PARAMETERS_CHARS"]

"""The pure logic of plpy/ modules, run with a fake plpy (the real one is proven in integration/)."""

import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gstjobs.resources import load_plpy_module


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


class FakePlpy:
    """Just enough of plpy for the runner: a body answering from a script of batches, each
    adding its counts (gstjobs.add_counts, tested in integration/) to the total it was given."""

    class SPIError(Exception):
        spidata = (None, None, None)

    def __init__(self, batches: list[tuple[str, bool]]) -> None:
        self.batches: Iterator[tuple[str, bool]] = iter(batches)
        self.commits = 0
        self.added: list[list[Any]] = []

    def prepare(self, query: str, types: list[str]) -> str:
        return query

    def execute(self, plan: str, args: list[Any]) -> list[dict[str, Any]]:
        counts, more = next(self.batches)
        self.added.append([args[-1], counts])
        return [{"total": f"total after {len(self.added)}", "more": more}]

    def commit(self) -> None:
        self.commits += 1


def test_batches_are_added_up_and_committed_between() -> None:
    fake = FakePlpy([('{"runs": 2}', True), ('{"runs": 2}', True), ('{"runs": 1}', False)])
    runner = load_plpy_module("runner", fake)
    assert runner.run_batches("batch", []) == "total after 3"
    assert fake.added == [
        ["{}", '{"runs": 2}'],
        ["total after 1", '{"runs": 2}'],
        ["total after 2", '{"runs": 1}'],
    ]
    assert fake.commits == 2


def test_spi_error_is_described_with_detail_and_hint() -> None:
    runner = load_plpy_module("runner", FakePlpy([]))
    error = FakePlpy.SPIError("unknown tenant 9")
    error.spidata = (None, "no such firm", "list firms first")
    assert (
        runner.describe(error) == "unknown tenant 9\nDETAIL: no such firm\nHINT: list firms first"
    )

"""The benchmark's growth-by-size table: each job's time, buffers and work at seed, L and XL,
and the factor over the size before (docs/BENCHMARKS.md, "Growth: seed, L, XL")."""

from typing import Any

from bench.run import size_growth


def measured(ms: float, buffers: int | None, **counts: int) -> dict[str, Any]:
    return {"ways": {"job": {"median_ms": ms}}, "buffers": buffers, "counts": counts}


def test_each_job_at_each_size_with_its_factors() -> None:
    results = {
        "sizes": {
            "seed": {"jobs": {"hearing-reminders": measured(40, 100, slots=10, notified=5)}},
            "l": {
                "jobs": {
                    "hearing-reminders": measured(400, 2000, slots=100, notified=500),
                    "health-check": measured(180, None),
                }
            },
            "xl": {"jobs": {"hearing-reminders": measured(4400, 19000, slots=1000, notified=9)}},
        }
    }
    assert size_growth(results) == [
        ["hearing-reminders", "seed", 10, "", 5, 40, 100, "", "", ""],
        ["hearing-reminders", "l", 100, "", 500, 400, 2000, 10.0, 20.0, 10.0],
        ["hearing-reminders", "xl", 1000, "", 9, 4400, 19000, 11.0, 9.5, 10.0],
    ]


def test_sla_check_grows_with_what_it_found_and_one_size_makes_no_table() -> None:
    results = {
        "sizes": {
            "l": {"jobs": {"sla-check": measured(300, 5000, found=1000, notified=1500)}},
            "xl": {"jobs": {"sla-check": measured(2700, 51000, found=9000, notified=13000)}},
        }
    }
    [_, xl] = size_growth(results)
    assert xl == ["sla-check", "xl", "", 9000, 13000, 2700, 51000, 9.0, 10.2, 9.0]
    assert size_growth({"sizes": {"l": results["sizes"]["l"]}}) == []

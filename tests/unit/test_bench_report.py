"""The benchmark's growth-by-size table: each job's time, buffers and work at seed, L and XL,
and the factor over the size before (docs/BENCHMARKS.md, "Growth: seed, L, XL")."""

from typing import Any

from bench.run import SLA_EVERY_MINUTE, size_growth, targets


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


def run(job_ms: float, limit_ms: float, notified: int = 57, state: int = 17) -> dict[str, Any]:
    """A job measured the job way and the limit way, with the same effects."""
    effects = f"{notified}:digest:{state}"
    return {
        "ways": {
            "job": {"median_ms": job_ms, "effects": effects},
            "limit": {"median_ms": limit_ms, "effects": effects},
        },
        "same_effects": True,
        "job_over_limit": round(job_ms / limit_ms, 2),
    }


def at_l(fixed_cost: dict[str, Any], sla_minute: dict[str, Any]) -> dict[str, Any]:
    return {"sizes": {"l": {"fixed_cost": fixed_cost, "jobs": {SLA_EVERY_MINUTE: sla_minute}}}}


def verdicts(results: dict[str, Any]) -> dict[str, Any]:
    """(value, pass) of each target, by its name without the figures in its last parentheses."""
    return {t["target"].rsplit(" (", 1)[0]: (t["value"], t["pass"]) for t in targets(results)}


FIFTY_MS = "l sla-check <= 50 ms at its schedule after a run's fixed cost"
AFTER_LIMIT = "l sla-check (1 min): job/limit <= 1.3 after a run's fixed cost"


def test_the_one_minute_sla_check_is_judged_after_a_runs_fixed_cost() -> None:
    # 75 ms in all: 49 ms after a run's fixed cost of 26 ms, its bare statements 55 ms
    found = verdicts(at_l({"heartbeat_ms": 26.0}, run(75.0, 55.0)))
    assert found[FIFTY_MS] == (49.0, True)
    assert found[AFTER_LIMIT] == (0.89, True)
    # the same run with a fixed cost of 20 ms has 55 ms of work: over the 50
    assert verdicts(at_l({"heartbeat_ms": 20.0}, run(75.0, 55.0)))[FIFTY_MS] == (55.0, False)
    # and work slower than its bare statements fails job/limit too: (95 - 20) / 55
    assert verdicts(at_l({"heartbeat_ms": 20.0}, run(95.0, 55.0)))[AFTER_LIMIT] == (1.36, False)


def test_a_run_judged_after_the_fixed_cost_is_judged_after_its_own_heartbeat() -> None:
    # the fixed cost was 30 ms at the size's start; beside the job, 20 ms: 55 ms of work
    sla = run(75.0, 55.0) | {"heartbeat": {"median_ms": 20.0, "runs_ms": [19.0, 20.0, 21.0]}}
    fixed_cost = {"heartbeat_ms": 30.0, "heartbeat_runs_ms": [29.0, 30.0, 31.0]}
    assert verdicts(at_l(fixed_cost, sla))[FIFTY_MS] == (55.0, False)


def test_the_fixed_cost_is_the_median_of_every_heartbeat_the_size_measured() -> None:
    # three slow heartbeats at the start (a machine still busy), five fast ones beside the jobs
    beats = {"median_ms": 21.0, "runs_ms": [20.0, 21.0, 22.0, 21.5, 20.5]}
    results = {
        "sizes": {
            "seed": {
                "fixed_cost": {"heartbeat_ms": 30.0, "heartbeat_runs_ms": [29.0, 30.0, 31.0]},
                "jobs": {"sla-check": run(40.0, 20.0) | {"heartbeat": beats}},
            }
        }
    }
    [fixed] = [t for t in targets(results) if "nothing to do" in t["target"]]
    assert (fixed["value"], fixed["pass"]) == (21.75, True)
    assert "median of 8" in fixed["target"]
    # the same heartbeats all slow fail it
    beats["runs_ms"] = [26.0, 27.0, 28.0, 26.5, 27.5]
    [fixed] = [t for t in targets(results) if "nothing to do" in t["target"]]
    assert (fixed["value"], fixed["pass"]) == (27.75, False)

"""Rendering rows as a table (for people), JSON or CSV (for programs)."""

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

FORMATS = ("table", "json", "csv")


def seconds(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds(), 3)


def human_duration(value: timedelta | None) -> str:
    if value is None:
        return ""
    total = value.total_seconds()
    if total < 60:
        return f"{total:.2f} s"
    minutes, rest = divmod(int(total), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def human_time(value: datetime | None, zone: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def machine(value: Any) -> Any:
    """A value as JSON and CSV carry it: times ISO 8601 with offset, durations in seconds."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return seconds(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def nested(value: Any) -> Any:
    """json.dumps' fallback for values inside lists and objects (a rule's notified dates)."""
    converted = machine(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return converted


def for_people(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return human_time(value, zone)
    if isinstance(value, timedelta):
        return human_duration(value)
    if isinstance(value, dict):
        # the headline counts; per-step ones (sla-breach.notified) are in --format json
        return " ".join(
            f"{k}={v}" for k, v in value.items() if "." not in k and not isinstance(v, (list, dict))
        )
    if value is None:
        return ""
    return value


def render(rows: Sequence[dict[str, Any]], fmt: str, zone: ZoneInfo, empty: str = "(none)") -> str:
    if fmt == "json":
        return json.dumps(
            [{k: machine(v) for k, v in row.items()} for row in rows], indent=2, default=nested
        )
    if fmt == "csv":
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        k: json.dumps(v, default=nested)
                        if isinstance(v, (dict, list))
                        else machine(v)
                        for k, v in row.items()
                    }
                )
        return out.getvalue().rstrip("\n")
    if not rows:
        return empty
    from tabulate import tabulate

    shown = [{k: for_people(v, zone) for k, v in row.items()} for row in rows]
    return tabulate(shown, headers="keys")


def render_one(row: dict[str, Any], fmt: str, zone: ZoneInfo) -> str:
    """One record: JSON as an object, a table as field/value lines."""
    if fmt == "json":
        return json.dumps({k: machine(v) for k, v in row.items()}, indent=2, default=nested)
    if fmt == "csv":
        return render([row], fmt, zone)
    width = max(len(k) for k in row)
    lines = []
    for key, value in row.items():
        shown = (
            json.dumps(value, default=nested)
            if isinstance(value, (dict, list))
            else for_people(value, zone)
        )
        text = str(shown).replace("\n", "\n" + " " * (width + 2))
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)

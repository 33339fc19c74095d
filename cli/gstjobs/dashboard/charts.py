"""The dashboard's charts: SVG made on the server by pygal, no script in the page."""

import re
import sys
from typing import Any
from zoneinfo import ZoneInfo

import pygal
from markupsafe import Markup
from pygal.style import Style

# pygal puts an import hook for its map plugins (unused here) on sys.meta_path, of the kind
# Python deprecated (find_module: an ImportWarning at every later import): taken off again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

# a run's bar by how it ended; failures stand out
COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c0392b",
    "crashed": "#c0392b",
    "cancelled": "#e67e22",
    "running": "#1565c0",
}
OTHER = "#9e9e9e"  # skipped, starting
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    font_family="system-ui, sans-serif",
    colors=("#2e7d32",),
)
# pygal's inline configuration script: nothing runs in the page (its CSP forbids it anyway)
SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)


def durations_chart(runs: list[dict[str, Any]], zone: ZoneInfo, small: bool) -> Markup:
    """A bar per run, oldest on the left: its duration in seconds, coloured by how it ended;
    a failed run's bar is red and says so in its label (the SVG's <desc>)."""
    if not runs:
        return Markup("<small>no runs yet</small>")
    ordered = list(reversed(runs))
    chart = pygal.Bar(
        style=STYLE,
        width=320 if small else 960,
        height=70 if small else 260,
        show_legend=False,
        show_x_labels=not small,
        show_y_labels=not small,
        x_label_rotation=40,
        show_minor_x_labels=False,
        js=[],
        disable_xml_declaration=True,
        margin=2 if small else 16,
        title=None if small else "Duration of the last runs (seconds; red: failed)",
    )
    chart.x_labels = [
        r["started_at"].astimezone(zone).strftime("%d %b %H:%M") if r["started_at"] else ""
        for r in ordered
    ]
    chart.x_labels_major_every = max(1, len(ordered) // 8)
    chart.add(
        "duration",
        [
            {
                "value": round(r["duration"].total_seconds(), 3) if r["duration"] else 0,
                "color": COLOURS.get(r["status"], OTHER),
                "label": f"run {r['run_id'] or ''} {r['status']}",
            }
            for r in ordered
        ],
    )
    svg = SCRIPT.sub("", chart.render(is_unicode=True))
    # pygal escapes every label and value it writes (ElementTree)
    return Markup(svg)

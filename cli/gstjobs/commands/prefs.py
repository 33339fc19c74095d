"""What a firm's members receive, and when (docs/DELIVERY.md, "What a member receives, and
when"): per kind of notification, the channels or the digest, the quiet hours through which
what can wait is held, and when the digest goes. The firm application sets them for its own
members; an operator here, audited."""

import re
from datetime import time
from typing import Any

import click

from gstjobs import ops
from gstjobs.output import render
from gstjobs.shared import (
    Context,
    echo_json_result,
    fail,
    format_option,
    reason_option,
    tenant_option,
    with_context,
)

FIELDS = ("email", "whatsapp", "email_instead", "through_quiet_hours", "digest")


def member_of(value: str) -> int | None:
    """MEMBER: a member's id, or `firm` for the firm's own choices (None)."""
    if value == "firm":
        return None
    if not value.isdigit() or int(value) < 1:
        fail(f"MEMBER is a member's id or 'firm', not {value!r}")
    return int(value)


def quiet_hours(value: str) -> tuple[time, time] | None:
    """--quiet: "21:00-08:00", "none" (equal times) or "firm" (a member's: the firm's again,
    None)."""
    if value == "firm":
        return None
    if value == "none":
        return (time(0), time(0))
    found = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", value)
    if found:
        h1, m1, h2, m2 = (int(part) for part in found.groups())
        if h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60:
            return (time(h1, m1), time(h2, m2))
    fail(f"--quiet is HH:MM-HH:MM, from-until (e.g. 21:00-08:00), 'none' or 'firm', not {value!r}")


def time_of_day(value: str, option: str) -> str:
    """HH:MM, checked."""
    found = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not found or int(found[1]) > 23 or int(found[2]) > 59:
        fail(f"{option} is a time of day, HH:MM (e.g. 07:30), or 'firm', not {value!r}")
    return f"{int(found[1]):02}:{found[2]}"


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekdays(value: str) -> list[int]:
    """--digest-days: 'daily', 'weekdays', or days and ranges, 'mon-fri', '1,3,5', 'mon,thu'
    (ISO: 1 Monday .. 7 Sunday)."""
    named = {"daily": "1-7", "weekdays": "1-5"}.get(value.lower(), value.lower())

    def day(token: str) -> int:
        token = token.strip()
        if token in DAY_NAMES:
            return DAY_NAMES.index(token) + 1
        if token.isdigit() and 1 <= int(token) <= 7:
            return int(token)
        fail(
            f"--digest-days is 'daily', 'weekdays', or days and ranges such as mon-fri, 1,3,5"
            f" (1 Monday .. 7 Sunday), or 'firm'; not {value!r}"
        )

    days: set[int] = set()
    for part in named.split(","):
        first, _, last = part.partition("-")
        start, end = day(first), day(last) if last else day(first)
        if end < start:
            fail(f"--digest-days: {part!r} runs backwards (write e.g. mon-fri)")
        days.update(range(start, end + 1))
    return sorted(days)


@click.group()
def prefs() -> None:
    """What a firm's members receive, and when: the channels per kind of notification and the
    quiet hours (audited changes). MEMBER is a member's id, or `firm` for the firm's own
    choices, which apply to every member without theirs.

    \b
    Example:
      gstjobs prefs show --tenant 1 3
      gstjobs prefs set --tenant 1 3 --kind sla-breach --no-whatsapp --reason "asked by email"
      gstjobs prefs set --tenant 1 firm --quiet 21:30-07:30
      gstjobs prefs set --tenant 1 3 --kind sla-breach-escalation --digest --digest-at 18:00
    """


@prefs.command("show")
@tenant_option
@click.argument("member", required=False, default="firm")
@format_option
@with_context
def prefs_show(ctx: Context, tenant_id: int, member: str, fmt: str) -> None:
    """The channels and quiet hours that apply to MEMBER (default: the firm's own), per kind,
    and whose choice each is: the member's, the firm's or the default (email and WhatsApp).
    Urgency 0 and 1 (a hearing or a deadline today or tomorrow) go whatever the choice.

    \b
    Example:
      gstjobs prefs show --tenant 1 3
    """
    member_id = member_of(member)
    with ctx.database() as conn:
        zone = ctx.zone(conn, None)
        rows = ops.choices(conn, tenant_id, member_id)
    if not rows:
        fail(
            f"firm {tenant_id} has no member {member_id}"
            if member_id
            else f"no firm {tenant_id} (gstjobs firm list shows the firms)"
        )
    if member_id is None:
        rows = [{k: v for k, v in row.items() if k not in MEMBER_FACTS} for row in rows]
    elif fmt == "table":
        first = rows[0]
        reach = "WhatsApp reaches them" if first["whatsapp_reaches"] else "no WhatsApp"
        email = "an email address" if first["has_email"] else "no email address"
        state = "" if first["active"] else ", inactive: receives nothing"
        click.echo(f"{first['member']} ({first['role']}{state}): {email}, {reach}")
        rows = [{k: v for k, v in row.items() if k not in MEMBER_FACTS} for row in rows]
    click.echo(render(rows, fmt, zone))


# a member's own facts, said once above the table, not on each kind's row
MEMBER_FACTS = ("member", "role", "active", "has_email", "whatsapp_reaches")


@prefs.command("set")
@tenant_option
@click.argument("member")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="A kind of notification (repeat for several; 'all' for every kind).",
)
@click.option("--email/--no-email", default=None, help="Send it by email.")
@click.option("--whatsapp/--no-whatsapp", default=None, help="Send it by WhatsApp.")
@click.option(
    "--email-instead/--no-email-instead",
    default=None,
    help="Email when WhatsApp is chosen and cannot go (no opt-in, an opt-out, no phone).",
)
@click.option(
    "--through-quiet-hours/--no-through-quiet-hours",
    default=None,
    help="Send it during quiet hours too, instead of holding it until they end.",
)
@click.option(
    "--digest/--no-digest",
    default=None,
    help="Gather it into the member's digest email instead (what can wait; urgency 0-1 never).",
)
@click.option(
    "--reset",
    is_flag=True,
    help="Remove the choice for the kinds (a member's: the firm's applies; the firm's: default).",
)
@click.option(
    "--quiet",
    metavar="HH:MM-HH:MM|none|firm",
    help="Quiet hours in the firm's zone, e.g. 21:00-08:00; 'none'; 'firm' (a member: the firm's).",
)
@click.option(
    "--digest-at",
    metavar="HH:MM|firm",
    help="When the digest goes, in the firm's zone; 'firm' (a member: the firm's).",
)
@click.option(
    "--digest-days",
    metavar="DAYS|firm",
    help="Days: daily, weekdays, mon-fri, 1,3,5 (1 Monday); 'firm' (a member: the firm's).",
)
@reason_option
@format_option
@with_context
def prefs_set(
    ctx: Context,
    tenant_id: int,
    member: str,
    kinds: tuple[str, ...],
    reset: bool,
    quiet: str | None,
    digest_at: str | None,
    digest_days: str | None,
    reason: str | None,
    fmt: str,
    **fields: bool | None,
) -> None:
    """Set what MEMBER (a member's id, or `firm`) receives: for the kinds given, the channels
    named (the rest stay as they apply now), or --reset; and/or the quiet hours. A choice of
    neither channel switches a kind off, except urgency 0 and 1, which go by every channel the
    member has.

    \b
    Example:
      gstjobs prefs set --tenant 1 3 --kind sla-breach --kind overdue --email --no-whatsapp
      gstjobs prefs set --tenant 1 firm --kind analytics-anomaly --no-whatsapp
      gstjobs prefs set --tenant 1 3 --kind all --reset
      gstjobs prefs set --tenant 1 3 --quiet 22:00-07:00 --reason "works late"
    """
    member_id = member_of(member)
    choice = {k: v for k, v in fields.items() if v is not None}
    if choice and reset:
        fail("--reset removes the choice: name no channel with it")
    if (choice or reset) and not kinds:
        fail("name the kinds with --kind (or --kind all)")
    if kinds and not (choice or reset):
        fail("say what to set for the kinds: --email/--no-email, --whatsapp/--no-whatsapp, ...")
    if not kinds and quiet is None and digest_at is None and digest_days is None:
        fail("nothing to set: give --kind with channels, --quiet, --digest-at or --digest-days")
    if quiet == "firm" and member_id is None:
        fail("--quiet firm is for a member (the firm's own hours are two times, or none)")
    if member_id is None and "firm" in (digest_at, digest_days):
        fail("--digest-at/--digest-days firm is for a member (the firm's own are values)")
    hours = quiet_hours(quiet) if quiet is not None else None
    times: dict[str, Any] = {}
    if digest_at is not None:
        times["digest_at"] = None if digest_at == "firm" else time_of_day(digest_at, "--digest-at")
    if digest_days is not None:
        times["digest_days"] = None if digest_days == "firm" else weekdays(digest_days)
    results: list[dict[str, Any]] = []
    with ctx.database() as conn:
        known = ops.notification_kinds(conn)
        chosen = list(known) if "all" in kinds else list(dict.fromkeys(kinds))
        unknown = [k for k in chosen if k not in known]
        if unknown:
            fail(f"no kind of notification {unknown[0]!r}; the kinds: {', '.join(known)}")
        # WhatsApp chosen for a kind that never goes by it: refused when named; with --kind all,
        # the kind keeps its choice (--no-email with it would switch the kind off)
        left_as_is = [k for k in chosen if not known[k]] if choice.get("whatsapp") else []
        if left_as_is and "all" not in kinds:
            fail(f"{left_as_is[0]} does not go by WhatsApp (a list): choose --email or --digest")
        # one transaction: every change is made, or none
        with conn.transaction():
            for kind in chosen:
                if kind in left_as_is:
                    results.append({"kind": kind, "unchanged": "never goes by WhatsApp"})
                    continue
                wanted = None if reset else choice
                results.append(ops.set_choice(conn, tenant_id, member_id, kind, wanted, reason))
            if quiet is not None:
                results.append(ops.set_quiet_hours(conn, tenant_id, member_id, hours, reason))
            if times:
                results.append(ops.set_digest_time(conn, tenant_id, member_id, times, reason))
    if echo_json_result({"changed": results}, fmt):
        return
    who = "the firm" if member_id is None else f"member {member_id}"
    for result in results:
        if "unchanged" in result:
            click.echo(f"{who}, {result['kind']}: unchanged ({result['unchanged']})")
        elif "kind" in result:
            channels = [name for name in ("email", "whatsapp") if result[name]] or ["none"]
            click.echo(
                f"{who}, {result['kind']}: {' and '.join(channels)}"
                f"{', email instead of WhatsApp that cannot go' if result['email_instead'] else ''}"
                f"{', through quiet hours' if result['through_quiet_hours'] else ''}"
                f"{', in the digest' if result['digest'] else ''}"
                f" ({result['chosen_by']}'s choice)"
            )
        elif "quiet_from" in result:
            click.echo(
                f"{who}: quiet hours {result['quiet_from'][:5]}-{result['quiet_until'][:5]}"
                f" ({result['quiet_hours_by']}'s)"
            )
        else:
            days = ",".join(DAY_NAMES[day - 1] for day in result["digest_days"])
            click.echo(
                f"{who}: digest at {result['digest_at'][:5]} ({result['digest_at_by']}'s)"
                f" on {days} ({result['digest_days_by']}'s)"
            )


COMMANDS = (prefs,)

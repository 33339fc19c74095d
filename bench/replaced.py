"""The replaced design, for comparison: a client that fetches candidate rows over the
connection and, row by row, looks up what it needs and inserts one notification at a time, as
the old edge functions did. It writes exactly what the jobs write (checked by bench/run.py).
bench/run.py runs it twice: on an autocommit connection (every statement its own transaction,
as each PostgREST request of the edge functions was) and in one transaction."""

import re
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from gstjobs.resources import load_plpy_module
from psycopg.rows import dict_row

PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def local(moment: datetime, zone: str) -> str:
    """As gstjobs.format_local writes it: 'Fri 20 Nov 2026, 10:30 IST'."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y, %H:%M %Z")


class Client:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.cur = conn.cursor(row_factory=dict_row)
        self.templates = {
            r["kind"]: r for r in self.cur.execute("SELECT * FROM gstjobs.templates").fetchall()
        }

    def one(self, query: str, *args: Any) -> dict[str, Any] | None:
        return self.cur.execute(query.encode(), args).fetchone()

    def firm(self, tenant_id: int) -> dict[str, Any]:
        row = self.one("SELECT * FROM litigation.tenants WHERE id = %s", tenant_id)
        assert row is not None
        return row

    def member(self, tenant_id: int, member_id: int | None) -> dict[str, Any] | None:
        if member_id is None:
            return None
        return self.one(
            "SELECT * FROM litigation.members WHERE tenant_id = %s AND id = %s",
            tenant_id,
            member_id,
        )

    def case_and_client(
        self, tenant_id: int, case_id: int | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """A case and its client, one query each, as the old functions looked them up."""
        if case_id is None:
            return None, None
        case = self.one(
            "SELECT * FROM litigation.cases WHERE tenant_id = %s AND id = %s", tenant_id, case_id
        )
        if case is None:
            return None, None
        return case, self.one(
            "SELECT * FROM litigation.clients WHERE tenant_id = %s AND id = %s",
            tenant_id,
            case["client_id"],
        )

    def notify(
        self,
        kind: str,
        firm: dict[str, Any],
        member: dict[str, Any],
        values: dict[str, Any],
        urgency: int,
        dedupe: str,
    ) -> int:
        template = self.templates[kind]
        values = {**values, "recipient": member["name"]}
        sent = 0
        for channel, address in (
            ("email", member["email"]),
            ("whatsapp", member["phone"] if firm["whatsapp_enabled"] else None),
        ):
            if address is None:
                continue
            subject, body = template["subject"], template["body"]
            for key, value in values.items():
                subject = subject.replace("{" + key + "}", "" if value is None else str(value))
                body = body.replace("{" + key + "}", "" if value is None else str(value))
            # a placeholder given no value renders empty, as gstjobs.render_body does (a
            # slot on time has no {late} note)
            subject, body = PLACEHOLDER.sub("", subject), PLACEHOLDER.sub("", body)
            self.cur.execute(
                "INSERT INTO gstjobs.notifications (tenant_id, kind, channel, recipient, member_id,"
                " subject, body, urgency, dedupe_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (dedupe_key) DO NOTHING",
                (
                    firm["id"],
                    kind,
                    channel,
                    address,
                    member["id"],
                    subject,
                    body,
                    urgency,
                    f"{dedupe}:{member['id']}:{channel}",
                ),
            )
            sent += 1
        return sent


CHECKS = (
    ("sla-breach", "sla_due_at", "sla_breach_detected_at", "sla_escalated_at", 3, 2),
    ("overdue", "due_at", "overdue_detected_at", "overdue_escalated_at", 4, 2),
)


def sla_check(conn: psycopg.Connection[Any], as_of: datetime) -> int:
    client, sent = Client(conn), 0
    for kind, due, detected, escalated, urgency, escalation_urgency in CHECKS:
        for step in ("detect", "escalate"):
            if step == "detect":
                where = f"t.{detected} IS NULL AND t.{due} IS NOT NULL AND t.{due} <= %s"
            else:
                where = (
                    f"t.{detected} IS NOT NULL AND t.{escalated} IS NULL"
                    f" AND t.{due} <= %s - firm.escalation_delay"
                )
            tasks = client.cur.execute(
                f"SELECT t.*, t.{due} AS due, extract(epoch FROM t.{due})::bigint AS due_epoch"
                " FROM litigation.tasks AS t JOIN litigation.tenants AS firm ON firm.id = t.tenant_id"
                f" WHERE t.status IN ('open', 'in_progress') AND {where}",
                (as_of,),
            ).fetchall()
            for task in tasks:
                column = detected if step == "detect" else escalated
                client.cur.execute(
                    f"UPDATE litigation.tasks SET {column} = %s WHERE tenant_id = %s AND id = %s",
                    (as_of, task["tenant_id"], task["id"]),
                )
                firm = client.firm(task["tenant_id"])
                assignee = client.member(task["tenant_id"], task["assignee_id"])
                case, customer = client.case_and_client(task["tenant_id"], task["case_id"])
                if step == "detect":
                    recipients = [assignee] if assignee and assignee["active"] else []
                    name, level = kind, urgency
                else:
                    name, level = kind + "-escalation", escalation_urgency
                    if assignee and assignee["manager_id"] is not None:
                        recipients = [client.member(task["tenant_id"], assignee["manager_id"])]
                    else:
                        recipients = client.cur.execute(
                            "SELECT * FROM litigation.members WHERE tenant_id = %s AND role = 'partner'",
                            (task["tenant_id"],),
                        ).fetchall()
                values = {
                    "firm": firm["name"],
                    "task": task["title"],
                    "case_reference": case["reference"] if case else "no case",
                    "section": case["section"] if case else None,
                    "client": customer["name"] if customer else None,
                    "priority": task["priority"],
                    "due_local": local(task["due"], firm["timezone"]),
                    "assignee": assignee["name"] if assignee else "nobody",
                }
                for member in recipients:
                    if member is not None and member["active"]:
                        sent += client.notify(
                            name,
                            firm,
                            member,
                            values,
                            level,
                            f"{name}:{task['tenant_id']}:{task['id']}:{task['due_epoch']}",
                        )
    conn.commit()
    return sent


def when(days: int) -> str:
    return {0: "today", 1: "tomorrow"}.get(days, f"in {days} days")


def slot_due(firm: dict[str, Any], as_of: datetime, at: time) -> tuple[Any, datetime] | None:
    """Today's local slot of a firm, if it has come (within 12 hours: no catch-up)."""
    zone = ZoneInfo(firm["timezone"])
    today = as_of.astimezone(zone).date()
    due = datetime.combine(today, at, zone)
    if due > as_of or (as_of - due).total_seconds() > 12 * 3600:
        return None
    return today, due


def take_slot(
    client: Client, job: str, firm: dict[str, Any], today: Any, due: datetime, as_of: datetime
) -> None:
    client.cur.execute(
        "INSERT INTO gstjobs.slots (job, tenant_id, local_date, status, due_at) VALUES (%s, %s, %s, %s, %s)",
        (job, firm["id"], today, "late" if (as_of - due).total_seconds() > 1800 else "done", due),
    )


def hearing_reminders(conn: psycopg.Connection[Any], as_of: datetime) -> int:
    """Each firm whose 08:00 has come today (no catch-up: the old system had none)."""
    client, sent = Client(conn), 0
    for firm in client.cur.execute("SELECT * FROM litigation.tenants ORDER BY id").fetchall():
        slot = slot_due(firm, as_of, time(8))
        if slot is None:
            continue
        today, due = slot
        zone = ZoneInfo(firm["timezone"])
        take_slot(client, "hearing-reminders", firm, today, due, as_of)
        hearings = client.cur.execute(
            "SELECT * FROM litigation.hearings WHERE tenant_id = %s AND status = 'scheduled'"
            " AND starts_at >= %s AND starts_at < %s",
            (
                firm["id"],
                datetime.combine(today, time(0), zone),
                datetime.combine(today + timedelta(days=8), time(0), zone),
            ),
        ).fetchall()
        for hearing in hearings:
            days = (hearing["starts_at"].astimezone(zone).date() - today).days
            if days not in (7, 1, 0) or hearing["starts_at"] <= as_of:
                continue
            case, customer = client.case_and_client(firm["id"], hearing["case_id"])
            assert case is not None
            owner = client.member(firm["id"], case["owner_id"])
            if owner is None or not owner["active"] or customer is None:
                continue
            values = {
                "firm": firm["name"],
                "when": when(days),
                "hearing_local": local(hearing["starts_at"], firm["timezone"]),
                "case_reference": case["reference"],
                "section": case["section"],
                "client": customer["name"],
                "forum": hearing["forum"],
                "venue": hearing["venue"] or "venue not recorded",
            }
            local_date = hearing["starts_at"].astimezone(zone).date()
            sent += client.notify(
                "hearing-reminder",
                firm,
                owner,
                values,
                {0: 0, 1: 1}.get(days, 5),
                f"hearing-reminder:{firm['id']}:{hearing['id']}:{local_date}:T-{days}",
            )
    conn.commit()
    return sent


def basis(deadline: dict[str, Any]) -> str:
    summary = (deadline["computation"] or {}).get("summary")
    if deadline["origin"] == "computed":
        return "\n\n" + summary
    if deadline["origin"] == "overridden":
        return "\n\nDate set by hand; the rule gave: " + summary
    return ""


def deadline_alerts(conn: psycopg.Connection[Any], as_of: datetime) -> int:
    """Each firm whose 09:00 has come today: deadlines 7, 3, 1, 0 days ahead; overdue once (a
    department's own time limit passed: a time bar, to the owner only)."""
    client, sent = Client(conn), 0
    department = {
        r["key"]
        for r in client.cur.execute(
            "SELECT key FROM gstjobs.deadline_rules WHERE binds = 'department'"
        ).fetchall()
    }
    for firm in client.cur.execute("SELECT * FROM litigation.tenants ORDER BY id").fetchall():
        slot = slot_due(firm, as_of, time(9))
        if slot is None:
            continue
        today, due = slot
        take_slot(client, "deadline-alerts", firm, today, due, as_of)
        upcoming = client.cur.execute(
            "SELECT * FROM litigation.deadlines WHERE tenant_id = %s AND status = 'open'"
            " AND due_on BETWEEN %s AND %s",
            (firm["id"], today, today + timedelta(days=7)),
        ).fetchall()
        overdue = client.cur.execute(
            "SELECT * FROM litigation.deadlines WHERE tenant_id = %s AND status = 'open'"
            " AND overdue_alerted_at IS NULL AND due_on < %s",
            (firm["id"], today),
        ).fetchall()
        partners = client.cur.execute(
            "SELECT * FROM litigation.members WHERE tenant_id = %s AND role = 'partner' AND active",
            (firm["id"],),
        ).fetchall()
        for deadline in upcoming + overdue:
            days = (deadline["due_on"] - today).days
            if days >= 0 and days not in (7, 3, 1, 0):
                continue
            case, customer = client.case_and_client(firm["id"], deadline["case_id"])
            assert case is not None and customer is not None
            owner = client.member(firm["id"], deadline["owner_id"])
            values = {
                "firm": firm["name"],
                "deadline": deadline["kind"],
                "due_local": deadline["due_on"].strftime("%a %d %b %Y"),
                "case_reference": case["reference"],
                "section": case["section"],
                "client": customer["name"],
                "basis": basis(deadline),
            }
            if days >= 0:
                if owner is not None and owner["active"]:
                    sent += client.notify(
                        "deadline-alert",
                        firm,
                        owner,
                        {**values, "when": when(days)},
                        {0: 0, 1: 1, 3: 3}.get(days, 5),
                        f"deadline-alert:{firm['id']}:{deadline['id']}:{deadline['due_on']}:T-{days}",
                    )
                continue
            client.cur.execute(
                "UPDATE litigation.deadlines SET overdue_alerted_at = %s WHERE tenant_id = %s AND id = %s",
                (as_of, firm["id"], deadline["id"]),
            )
            time_bar = deadline["rule_key"] in department
            kind = "deadline-time-bar" if time_bar else "deadline-overdue"
            recipients = {} if time_bar else {m["id"]: m for m in partners}
            if owner is not None and owner["active"]:
                recipients[owner["id"]] = owner
            for member in recipients.values():
                sent += client.notify(
                    kind,
                    firm,
                    member,
                    {**values, "owner": owner["name"] if owner else "nobody"},
                    3 if time_bar else 0,
                    f"{kind}:{firm['id']}:{deadline['id']}:{deadline['due_on']}",
                )
    conn.commit()
    return sent


# the figures of a snapshot, as the job has them
METRICS = load_plpy_module("local_jobs").METRICS


def analytics_snapshot(conn: psycopg.Connection[Any], as_of: datetime) -> int:
    """Each firm whose 23:45 has come today: its rows fetched and counted here, one by one."""
    from decimal import ROUND_HALF_UP, Decimal
    from statistics import mean, stdev

    from psycopg.types.json import Jsonb

    client, sent = Client(conn), 0
    department = {
        r["key"]
        for r in client.cur.execute(
            "SELECT key FROM gstjobs.deadline_rules WHERE binds = 'department'"
        ).fetchall()
    }
    for firm in client.cur.execute("SELECT * FROM litigation.tenants ORDER BY id").fetchall():
        slot = slot_due(firm, as_of, time(23, 45))
        if slot is None:
            continue
        today, due = slot
        take_slot(client, "analytics-snapshot", firm, today, due, as_of)
        by_stage: dict[str, int] = {}
        demand = Decimal(0)
        for case in client.cur.execute(
            "SELECT stage, demand_amount FROM litigation.cases WHERE tenant_id = %s AND status = 'open'",
            (firm["id"],),
        ).fetchall():
            by_stage[case["stage"]] = by_stage.get(case["stage"], 0) + 1
            demand += case["demand_amount"]
        open_tasks = overdue = 0
        sla: list[int] = []
        for task in client.cur.execute(
            "SELECT status, due_at, sla_due_at, completed_at FROM litigation.tasks WHERE tenant_id = %s",
            (firm["id"],),
        ).fetchall():
            if task["status"] in ("open", "in_progress"):
                open_tasks += 1
                overdue += task["due_at"] is not None and task["due_at"] < due
            if (
                task["status"] != "cancelled"
                and task["sla_due_at"] is not None
                and due - timedelta(days=30) <= task["sla_due_at"] < due
            ):
                met = (
                    task["completed_at"] is not None and task["completed_at"] <= task["sla_due_at"]
                )
                sla.append(1 if met else 0)
        hearings = len(
            client.cur.execute(
                "SELECT id FROM litigation.hearings WHERE tenant_id = %s AND status = 'scheduled'"
                " AND starts_at >= %s AND starts_at < %s",
                (firm["id"], due, due + timedelta(days=7)),
            ).fetchall()
        )
        missed = sum(
            1
            for d in client.cur.execute(
                "SELECT status, due_on, rule_key FROM litigation.deadlines WHERE tenant_id = %s",
                (firm["id"],),
            ).fetchall()
            if (d["status"] == "missed" or (d["status"] == "open" and d["due_on"] < today))
            and d["rule_key"] not in department
        )
        figures = {
            "demand_in_dispute": demand,
            "hearings_next_7_days": hearings,
            "open_tasks": open_tasks,
            "overdue_tasks": overdue,
            "sla_compliance": (
                (Decimal(sum(sla)) / len(sla)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
                if sla
                else None
            ),
            "deadlines_missed": missed,
        }
        history = client.cur.execute(
            "SELECT * FROM gstjobs.analytics_snapshots WHERE tenant_id = %s"
            " AND local_date >= %s AND local_date < %s",
            (firm["id"], today - timedelta(days=28), today),
        ).fetchall()
        anomalies = []
        for metric in sorted(METRICS):
            now, past = (
                figures[metric],
                [Decimal(h[metric]) for h in history if h[metric] is not None],
            )
            if now is None or len(past) < 7:
                continue
            average, spread = mean(past), stdev(past)
            if spread > 0 and abs(Decimal(now) - average) > 3 * spread:
                anomalies.append(
                    {
                        "metric": metric,
                        "value": Decimal(now),
                        "mean": average.quantize(Decimal("0.01"), ROUND_HALF_UP),
                        "stddev": spread.quantize(Decimal("0.01"), ROUND_HALF_UP),
                    }
                )
        # numbers go into JSON as numeric, with their scale, as the job writes them
        client.cur.execute(
            "INSERT INTO gstjobs.analytics_snapshots (tenant_id, local_date, open_cases_by_stage,"
            " demand_in_dispute, hearings_next_7_days, open_tasks, overdue_tasks, sla_compliance,"
            " deadlines_missed, anomalies) SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " (SELECT coalesce(jsonb_agg(jsonb_build_object('metric', m, 'value', v, 'mean', a,"
            " 'stddev', s) ORDER BY m), '[]') FROM unnest(%s::text[], %s::numeric[], %s::numeric[],"
            " %s::numeric[]) AS x (m, v, a, s))"
            " ON CONFLICT (tenant_id, local_date) DO NOTHING",
            (
                firm["id"],
                today,
                Jsonb(by_stage),
                *(figures[m] for m in METRICS),
                *([a[key] for a in anomalies] for key in ("metric", "value", "mean", "stddev")),
            ),
        )
        if not anomalies:
            continue
        lines = "\n".join(
            f"- {a['metric']}: {a['value']} (28-day mean {a['mean']}, standard deviation {a['stddev']})"
            for a in anomalies
        )
        for admin in client.cur.execute(
            "SELECT * FROM litigation.members WHERE tenant_id = %s AND role = 'admin' AND active",
            (firm["id"],),
        ).fetchall():
            sent += client.notify(
                "analytics-anomaly",
                firm,
                admin,
                {
                    "firm": firm["name"],
                    "local_date": today.strftime("%d %b %Y"),
                    "anomalies": lines,
                },
                4,
                f"analytics-anomaly:{firm['id']}:{today}",
            )
    conn.commit()
    return sent

"""GST statutory deadlines computed from case events: every rule with a worked example, month
ends and 29 February, closed days, the safe date, recomputation, overrides, and the alerts."""

from datetime import date
from typing import Any

import psycopg
import pytest
from gstjobs.schema import apply_reapplied
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.integration.conftest import at, notifications, run

D = date.fromisoformat


def record_event(conn: psycopg.Connection[Any], kind: str, on: str, **extra: Any) -> int:
    columns = {"tenant_id": 1, "case_id": 1, "kind": kind, "event_on": on, **extra}
    row = conn.execute(
        f"INSERT INTO litigation.case_events ({', '.join(columns)})"
        f" VALUES ({', '.join(['%s'] * len(columns))}) RETURNING id",
        list(columns.values()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def deadlines_of(conn: psycopg.Connection[Any], event_id: int) -> dict[str, dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(
        "SELECT * FROM litigation.deadlines WHERE tenant_id = 1 AND event_id = %s", (event_id,)
    ).fetchall()
    return {r["rule_key"]: r for r in rows}


def dates(row: dict[str, Any]) -> tuple[date, date, date | None]:
    return row["due_on"], row["statutory_on"], row["condonable_until"]


# rule -> (event kind, event date, event extras, safe date, statutory date, condonable until).
# Worked by hand against a firm with no holiday calendar (only Sundays closed).
WORKED_EXAMPLES: dict[str, tuple[str, str, dict[str, Any], str, str, str | None]] = {
    # the notice gave 15 days: 1 Sep + 15 = 16 Sep
    "scrutiny-reply": (
        "scrutiny_notice_served",
        "2026-09-01",
        {"notice_period_days": 15},
        "2026-09-16",
        "2026-09-16",
        None,
    ),
    # no period in the notice: 30 days
    "scn-reply-73": ("scn_73_issued", "2026-09-01", {}, "2026-10-01", "2026-10-01", None),
    "penalty-waiver-73": ("scn_73_issued", "2026-09-01", {}, "2026-10-01", "2026-10-01", None),
    # the notice gave 21 days
    "scn-reply-74": (
        "scn_74_issued",
        "2026-10-05",
        {"notice_period_days": 21},
        "2026-10-26",
        "2026-10-26",
        None,
    ),
    "reduced-penalty-74": ("scn_74_issued", "2026-10-05", {}, "2026-11-04", "2026-11-04", None),
    "scn-reply-74a": ("scn_74a_issued", "2026-06-15", {}, "2026-07-15", "2026-07-15", None),
    "penalty-waiver-74a": ("scn_74a_issued", "2026-06-15", {}, "2026-08-14", "2026-08-14", None),
    # 12 months from the notice, extendable by 6 months; the department's date: no safe reading
    "order-limit-74a": (
        "scn_74a_issued",
        "2026-06-15",
        {},
        "2027-06-15",
        "2027-06-15",
        "2027-12-15",
    ),
    # 30 Nov 2023 + 3 months = 29 Feb 2024 (leap year); 90 days = 28 Feb 2024
    "rectification-161": ("order_issued", "2023-11-30", {}, "2024-02-28", "2024-02-29", None),
    # 31 Aug + 3 months = 30 Nov (a Monday); 90 days = 29 Nov, a Sunday: the safe date is the
    # open day before it, Sat 28 Nov
    "payment-78": ("order_communicated", "2026-08-31", {}, "2026-11-28", "2026-11-30", None),
    "appeal-107": (
        "order_communicated",
        "2026-08-31",
        {},
        "2026-11-28",
        "2026-11-30",
        "2026-12-30",
    ),
    # communicated on or after 1 Apr 2026 (S.O. 4220(E)): the ordinary 3 months, to Tue 4 Aug
    # 2026; 90 days = Sun 2 Aug, so the safe date is Sat 1 Aug; condonable 3 more months
    "appeal-112": (
        "appellate_order_communicated",
        "2026-05-04",
        {},
        "2026-08-01",
        "2026-08-04",
        "2026-11-04",
    ),
    "appeal-117": ("tribunal_order_received", "2026-01-10", {}, "2026-07-09", "2026-07-09", None),
    # annual return 2020-21 due 28 Feb 2022 + 3 years = 28 Feb 2025 (no notification for the
    # year); 2021-22's, 31 Dec 2022 + 3 years, is 31 Dec 2025 (test below)
    "order-limit-73": (
        "scn_73_issued",
        "2024-10-01",
        {"financial_year": "2020-21"},
        "2025-02-28",
        "2025-02-28",
        None,
    ),
    # 73(2): at least 3 months before that limit. The latest such day: 30 Nov 2024 (30 Nov + 3
    # months = 28 Feb 2025; 1 Dec + 3 months = 1 Mar). The notice of 1 Oct 2024 was in time.
    "notice-limit-73": (
        "scn_73_issued",
        "2024-10-01",
        {"financial_year": "2020-21"},
        "2024-11-30",
        "2024-11-30",
        None,
    ),
    # 74(2): at least 6 months before the 74(10) limit of 31 Mar 2026 (below): 30 Sep 2025
    # (30 Sep + 6 months = 30 Mar; 1 Oct + 6 months = 1 Apr). The notice of 6 Oct 2025 came
    # after it: open, and a time bar
    "notice-limit-74": (
        "scn_74_issued",
        "2025-10-06",
        {"financial_year": "2019-20"},
        "2025-09-30",
        "2025-09-30",
        None,
    ),
    # 74A(2): 42 months from the annual return's due date: 2024-25 due 31 Dec 2025 + 42
    # months = 30 Jun 2029
    "notice-limit-74a": (
        "scn_74a_issued",
        "2026-06-15",
        {"financial_year": "2024-25"},
        "2029-06-30",
        "2029-06-30",
        None,
    ),
    # 161, first proviso: no rectification after 6 months from the order's issue: 30 Nov
    # 2023 + 6 months = 30 May 2024
    "rectification-limit-161": ("order_issued", "2023-11-30", {}, "2024-05-30", "2024-05-30", None),
    # annual return 2019-20 due 31 Mar 2021 + 5 years = 31 Mar 2026
    "order-limit-74": (
        "scn_74_issued",
        "2025-10-06",
        {"financial_year": "2019-20"},
        "2026-03-31",
        "2026-03-31",
        None,
    ),
}


def test_every_shipped_rule_has_a_worked_example(conn: psycopg.Connection[Any]) -> None:
    shipped = {r[0] for r in conn.execute("SELECT key FROM gstjobs.deadline_rules")}
    assert shipped == set(WORKED_EXAMPLES)


@pytest.mark.parametrize("rule", sorted(WORKED_EXAMPLES))
def test_worked_example(firm: psycopg.Connection[Any], rule: str) -> None:
    kind, on, extra, safe, statutory, condonable = WORKED_EXAMPLES[rule]
    event = record_event(firm, kind, on, **extra)
    row = deadlines_of(firm, event)[rule]
    assert dates(row) == (D(safe), D(statutory), condonable and D(condonable))
    # a limit on the notice's own issue, met by a notice in time, is closed as met
    in_time = row["computation"].get("event_in_time")
    assert row["origin"] == "computed"
    assert row["status"] == ("met" if in_time else "open")
    assert row["owner_id"] == 3  # the case's owner
    assert row["computation"]["rule"] == rule and row["computation"]["counted_from"]["on"]


def test_the_alert_names_rule_section_and_all_three_dates(firm: psycopg.Connection[Any]) -> None:
    event = record_event(firm, "order_communicated", "2026-08-31", document_ref="DIN 2026081234")
    appeal = deadlines_of(firm, event)["appeal-107"]
    line = (
        "Appeal to Appellate Authority, section 107(1): order communicated 31 Aug 2026: "
        "safe date 28 Nov 2026, statutory 30 Nov 2026, condonable to 30 Dec 2026"
    )
    assert appeal["computation"]["summary"] == line
    assert appeal["computation"]["period"] == "3 months"
    assert appeal["computation"]["days_reading"] == {"days": 90, "end": "2026-11-29"}
    assert appeal["computation"]["safe_moved_back"] == [{"on": "2026-11-29", "closed": "Sunday"}]
    # the alerts go against the safe date: T-7 of 28 Nov is 21 Nov
    run(firm, "deadline-alerts", at("2026-11-21 09:05"))
    alerts = {n["subject"]: n for n in notifications(firm, "deadline-alert")}
    subject = "Deadline in 7 days: Appeal to Appellate Authority (SCN/73/2025-26/00042)"
    assert set(alerts) == {
        subject,
        "Deadline in 7 days: Payment of the demand (SCN/73/2025-26/00042)",
    }
    assert line in alerts[subject]["body"]
    assert "falls due in 7 days, on Sat 28 Nov 2026." in alerts[subject]["body"]


def test_a_sunday_then_a_holiday_moves_the_statutory_date_not_the_safe_one(
    firm: psycopg.Connection[Any],
) -> None:
    # 6 Jun + 3 months = Sun 6 Sep; Mon 7 Sep is a holiday of the appellate calendar only
    calendar = firm.execute(
        "INSERT INTO litigation.holiday_calendars (tenant_id, name, forum)"
        " VALUES (1, 'Appellate Authority, Mumbai', 'appellate_authority') RETURNING id"
    ).fetchone()
    assert calendar is not None
    firm.execute(
        "INSERT INTO litigation.holidays (tenant_id, calendar_id, holiday_on, name)"
        " VALUES (1, %s, '2026-09-07', 'Ganesh Chaturthi (example)')",
        (calendar[0],),
    )
    event = record_event(firm, "order_communicated", "2026-06-06")
    found = deadlines_of(firm, event)
    appeal = found["appeal-107"]
    # safe: 90 days = Fri 4 Sep; statutory: past Sunday and the holiday to Tue 8 Sep;
    # condonable: a month from the last day of the period (6 Oct), not rolled
    assert dates(appeal) == (D("2026-09-04"), D("2026-09-08"), D("2026-10-06"))
    assert appeal["computation"]["closed_days_skipped"] == [
        {"on": "2026-09-06", "closed": "Sunday"},
        {"on": "2026-09-07", "closed": "Ganesh Chaturthi (example)"},
    ]
    assert (
        appeal["computation"]["calendar"] == f"Appellate Authority, Mumbai (calendar {calendar[0]})"
    )
    # payment is made to the proper officer: no calendar of its own, Sundays only
    assert dates(found["payment-78"]) == (D("2026-09-04"), D("2026-09-07"), None)

    # a firm-wide calendar that also closes on the Tuesday: the chain runs on to Wednesday
    firm.execute(
        "WITH c AS (INSERT INTO litigation.holiday_calendars (tenant_id, name) VALUES (1, 'Mumbai offices') RETURNING id)"
        " INSERT INTO litigation.holidays (tenant_id, calendar_id, holiday_on, name)"
        " SELECT 1, c.id, day, 'office holiday' FROM c, unnest(ARRAY['2026-09-07', '2026-09-08']::date[]) AS day"
    )
    found = deadlines_of(firm, event)
    assert found["payment-78"]["statutory_on"] == D("2026-09-09")
    assert found["appeal-107"]["statutory_on"] == D("2026-09-08")  # its own calendar wins
    # the holiday removed: counted again
    firm.execute("DELETE FROM litigation.holidays WHERE calendar_id = %s", (calendar[0],))
    assert deadlines_of(firm, event)["appeal-107"]["statutory_on"] == D("2026-09-07")


def test_tribunal_appeal_against_an_old_order_runs_to_the_notified_date(
    firm: psycopg.Connection[Any],
) -> None:
    # S.O. 4220(E): "the 30th day of June, 2026, as the date upto which appeal may be filed
    # ... where the order ... is communicated ... before the 1st day of April, 2026"
    event = record_event(firm, "appellate_order_communicated", "2025-01-15")
    appeal = deadlines_of(firm, event)["appeal-112"]
    # 3 months would end on 15 Apr 2025; the notified date is later; condonable 3 months on
    assert dates(appeal) == (D("2026-06-30"), D("2026-06-30"), D("2026-09-30"))
    notified = appeal["computation"]["notified"]
    assert (notified["notification"], notified["notified_on"], notified["section"]) == (
        "S.O. 4220(E)",
        "2025-09-17",
        "112(1)",
    )
    assert appeal["computation"]["summary"].endswith(
        "(the date notified by S.O. 4220(E) of 17 Sep 2025)"
    )
    # communicated on 31 Mar 2026: 3 months end on 30 Jun 2026 anyway; no notification used
    event = record_event(firm, "appellate_order_communicated", "2026-03-31")
    appeal = deadlines_of(firm, event)["appeal-112"]
    assert appeal["statutory_on"] == D("2026-06-30") and "notified" not in appeal["computation"]
    # communicated on 1 Apr 2026: the ordinary 3 months, to 1 Jul 2026
    event = record_event(firm, "appellate_order_communicated", "2026-04-01")
    appeal = deadlines_of(firm, event)["appeal-112"]
    assert appeal["statutory_on"] == D("2026-07-01") and "notified" not in appeal["computation"]


def test_the_section_73_limits_follow_the_notified_extensions(
    firm: psycopg.Connection[Any],
) -> None:
    def limits(year: str, on: str) -> tuple[dict[str, Any], dict[str, Any]]:
        found = deadlines_of(firm, record_event(firm, "scn_73_issued", on, financial_year=year))
        return found["order-limit-73"], found["notice-limit-73"]

    # 2017-18: 3 years from 5 Feb 2020 = 5 Feb 2023; 13/2022 extended it to 30 Sep 2023 and
    # 9/2023 to 31 Dec 2023: the later applies. The notice: 3 months before, 30 Sep 2023.
    order, notice = limits("2017-18", "2023-09-25")
    assert (order["statutory_on"], notice["statutory_on"]) == (D("2023-12-31"), D("2023-09-30"))
    assert (
        order["computation"]["notified"]["notification"] == "Notification No. 09/2023-Central Tax"
    )
    assert notice["status"] == "met"
    # 2018-19: 31 Dec 2020 + 3 years; 9/2023: 31 Mar 2024; 56/2023: 30 Apr 2024. The notice:
    # 31 Jan 2024 (31 Jan + 3 months = 30 Apr). One issued on 15 Feb 2024 came after it.
    order, notice = limits("2018-19", "2024-02-15")
    assert (order["statutory_on"], notice["statutory_on"]) == (D("2024-04-30"), D("2024-01-31"))
    assert (
        order["computation"]["notified"]["notification"] == "Notification No. 56/2023-Central Tax"
    )
    assert notice["status"] == "open" and notice["computation"]["event_in_time"] is False
    assert notice["computation"]["counted_back_from"]["rule"] == "order-limit-73"
    assert notice["computation"]["summary"] == (
        "Last date to issue the notice under section 73, section 73(2): 3 months before the last"
        " date for the order under section 73 for 2018-19, 30 Apr 2024 (Notification No."
        " 56/2023-Central Tax): last date 31 Jan 2024; the show cause notice issued under"
        " section 73 on 15 Feb 2024 came after it: open to challenge as time-barred"
    )
    # 2019-20: 9/2023: 30 Jun 2024; 56/2023: 31 Aug 2024; the notice: 31 May 2024
    order, notice = limits("2019-20", "2024-05-31")
    assert (order["statutory_on"], notice["statutory_on"]) == (D("2024-08-31"), D("2024-05-31"))
    assert notice["status"] == "met"

    # counsel retires 9/2023's date for 2017-18 (as if it had not been made): 13/2022's 30 Sep
    # 2023 applies, and the notice limit follows it to 30 Jun 2023; audited
    (row_id,) = firm.execute(
        "SELECT id FROM gstjobs.notified_dates WHERE financial_year = '2017-18'"
        " AND notification LIKE '%09/2023%'"
    ).fetchone() or (None,)
    changed = firm.execute(
        "SELECT gstjobs.define_notified_date(%s, 'what-if for a client')",
        (Jsonb({"id": row_id, "active": False}),),
    ).fetchone()
    assert changed is not None and changed[0]["deadlines_recomputed"] >= 2
    order, notice = limits("2017-18", "2023-06-01")
    assert (order["statutory_on"], notice["statutory_on"]) == (D("2023-09-30"), D("2023-06-30"))
    assert (
        order["computation"]["notified"]["notification"] == "Notification No. 13/2022-Central Tax"
    )
    audit = firm.execute(
        "SELECT action, reason FROM gstjobs.audit_log WHERE action LIKE 'notified-date.%'"
    ).fetchall()
    assert audit == [("notified-date.change", "what-if for a client")]


def test_counsel_adds_a_notification_with_its_citation(firm: psycopg.Connection[Any]) -> None:
    event = record_event(firm, "appellate_order_communicated", "2026-04-20")
    assert deadlines_of(firm, event)["appeal-112"]["statutory_on"] == D("2026-07-20")
    added = firm.execute(
        "SELECT gstjobs.define_notified_date(%s, 'as published')",
        (
            Jsonb(
                {
                    "rule_key": "appeal-112",
                    "notification": "S.O. 9999(E)",
                    "notified_on": "2026-06-30",
                    "section": "112(1)",
                    "for_events_before": "2026-05-01",
                    "last_day": "2026-07-31",
                    "operative_words": "the 31st day of July, 2026, as the date upto which ...",
                    "source": "Gazette of India (test data)",
                }
            ),
        ),
    ).fetchone()
    assert added is not None and added[0]["deadlines_recomputed"] == 1
    appeal = deadlines_of(firm, event)["appeal-112"]
    assert appeal["statutory_on"] == D("2026-07-31")
    assert appeal["computation"]["notified"]["notification"] == "S.O. 9999(E)"
    # bad input: refused, nothing changes
    for bad, error in (
        ({"rule_key": "appeal-112", "nonsense": 1}, errors.InvalidParameterValue),
        (
            {
                "rule_key": "no-such-rule",
                "notification": "x",
                "notified_on": "2026-01-01",
                "section": "1",
                "financial_year": "2020-21",
                "last_day": "2026-01-01",
                "operative_words": "x",
                "source": "x",
            },
            errors.UndefinedObject,
        ),
        (
            {
                "rule_key": "appeal-112",
                "notification": "x",
                "notified_on": "2026-01-01",
                "section": "1",
                "last_day": "2026-01-01",
                "operative_words": "x",
                "source": "x",
            },
            errors.CheckViolation,
        ),
        ({"id": 999999, "active": False}, errors.UndefinedObject),
    ):
        with pytest.raises(error):
            firm.execute("SELECT gstjobs.define_notified_date(%s)", (Jsonb(bad),))
    assert firm.execute("SELECT count(*) FROM gstjobs.notified_dates").fetchone() == (8,)


def test_a_notice_out_of_time_is_alerted_once_as_a_time_bar(firm: psycopg.Connection[Any]) -> None:
    late = record_event(firm, "scn_73_issued", "2024-02-15", financial_year="2018-19")
    in_time = record_event(firm, "scn_73_issued", "2024-01-10", financial_year="2018-19")
    assert deadlines_of(firm, in_time)["notice-limit-73"]["status"] == "met"
    run(firm, "deadline-alerts", at("2024-02-16 09:05"))
    run(firm, "deadline-alerts", at("2024-02-17 09:05"))
    bars = notifications(firm, "deadline-time-bar")
    # the case owner only, once, for the late notice only; not escalated to the partners
    assert {(n["member_id"], n["channel"]) for n in bars} == {(3, "email"), (3, "whatsapp")}
    email = next(n for n in bars if n["channel"] == "email")
    assert email["subject"] == (
        "Time bar: Last date to issue the notice under section 73 (SCN/73/2025-26/00042)"
        " was Wed 31 Jan 2024"
    )
    assert "came after it: open to challenge as time-barred" in email["body"]
    assert str(late) in email["dedupe_key"]
    # the firm's own overdue deadlines (the replies) are escalated as before; the time bar is not
    overdue = notifications(firm, "deadline-overdue")
    assert overdue and not [n for n in overdue if "Last date" in n["subject"]]


def test_a_notice_under_a_section_that_does_not_reach_its_year_is_recorded_with_a_warning(
    firm: psycopg.Connection[Any],
) -> None:
    # section 73(12): section 73 applies to tax up to financial year 2023-24
    event = record_event(firm, "scn_73_issued", "2026-02-01", financial_year="2024-25")
    assert "scn-reply-73" in deadlines_of(firm, event)  # the firm must still answer it
    (unresolved,) = firm.execute(
        "SELECT unresolved FROM litigation.case_events WHERE id = %s", (event,)
    ).fetchone() or (None,)
    assert unresolved == [
        {
            "warning": "section 73(12): section 73 applies to tax for the period up to financial"
            " year 2023-24; this show cause notice issued under section 73 is for financial"
            " year 2024-25"
        }
    ]
    # 74A for a year before 2024-25
    event = record_event(firm, "scn_74a_issued", "2026-02-01", financial_year="2023-24")
    (unresolved,) = firm.execute(
        "SELECT unresolved FROM litigation.case_events WHERE id = %s", (event,)
    ).fetchone() or (None,)
    assert [u.get("warning", "")[:14] for u in unresolved] == ["section 74A(1)"]
    # corrected to a year it reaches: the warning goes
    firm.execute(
        "UPDATE litigation.case_events SET financial_year = '2024-25' WHERE id = %s", (event,)
    )
    assert firm.execute(
        "SELECT unresolved FROM litigation.case_events WHERE id = %s", (event,)
    ).fetchone() == ([],)


def test_scrutiny_reply_is_capped_at_thirty_days(firm: psycopg.Connection[Any]) -> None:
    event = record_event(firm, "scrutiny_notice_served", "2026-09-01", notice_period_days=45)
    reply = deadlines_of(firm, event)["scrutiny-reply"]
    assert reply["due_on"] == D("2026-10-01")
    assert reply["computation"]["period"] == "30 days (the notice gave 45, at most 30)"


def test_a_limitation_without_its_financial_year_is_reported_not_guessed(
    firm: psycopg.Connection[Any],
) -> None:
    event = record_event(firm, "scn_73_issued", "2026-09-01")
    assert set(deadlines_of(firm, event)) == {"scn-reply-73", "penalty-waiver-73"}
    unresolved = firm.execute(
        "SELECT unresolved FROM litigation.case_events WHERE id = %s", (event,)
    ).fetchone()
    assert unresolved is not None
    # the notice limit is counted back from the order limit: both unresolved
    assert [u["rule"] for u in unresolved[0]] == ["notice-limit-73", "order-limit-73"]
    assert all("financial year" in u["problem"] for u in unresolved[0])
    # the year recorded: the limitation appears and the problem goes
    firm.execute(
        "UPDATE litigation.case_events SET financial_year = '2021-22' WHERE id = %s", (event,)
    )
    limit = deadlines_of(firm, event)["order-limit-73"]
    assert limit["due_on"] == D("2025-12-31")
    assert firm.execute(
        "SELECT unresolved FROM litigation.case_events WHERE id = %s", (event,)
    ).fetchone() == ([],)
    # a year with no due date on record
    firm.execute(
        "UPDATE litigation.case_events SET financial_year = '2030-31' WHERE id = %s", (event,)
    )
    assert "order-limit-73" not in deadlines_of(firm, event)
    unresolved = firm.execute(
        "SELECT unresolved FROM litigation.case_events WHERE id = %s", (event,)
    ).fetchone()
    assert unresolved is not None
    assert [u.get("rule") for u in unresolved[0]] == [None, "notice-limit-73", "order-limit-73"]
    assert "2030-31" in unresolved[0][2]["problem"]
    assert "73(12)" in unresolved[0][0]["warning"]  # and section 73 does not reach 2030-31


def test_a_corrected_event_date_moves_its_deadlines_and_their_alerts(
    firm: psycopg.Connection[Any],
) -> None:
    event = record_event(firm, "order_communicated", "2026-07-31")
    # 31 Jul + 3 months = Sat 31 Oct, an open day; 90 days = Thu 29 Oct
    assert dates(deadlines_of(firm, event)["appeal-107"]) == (
        D("2026-10-29"),
        D("2026-10-31"),
        D("2026-11-30"),
    )
    run(firm, "deadline-alerts", at("2026-10-22 09:05"))
    assert (
        len(notifications(firm, "deadline-alert")) == 4
    )  # two deadlines, Aarav by email and WhatsApp
    firm.execute(
        "UPDATE litigation.case_events SET event_on = '2026-08-10' WHERE id = %s", (event,)
    )
    appeal = deadlines_of(firm, event)["appeal-107"]
    # 10 Aug + 3 months = Tue 10 Nov; 90 days = Sun 8 Nov, so Sat 7 Nov; condonable to 10 Dec
    assert dates(appeal) == (D("2026-11-07"), D("2026-11-10"), D("2026-12-10"))
    assert appeal["origin"] == "computed" and appeal["overdue_alerted_at"] is None
    # the old date's T-3 is not sent; the new date's T-7 is, naming the corrected event
    run(firm, "deadline-alerts", at("2026-10-26 09:05"))
    assert len(notifications(firm, "deadline-alert")) == 4
    run(firm, "deadline-alerts", at("2026-10-31 09:05"))
    alerts = notifications(firm, "deadline-alert")
    assert len(alerts) == 8
    assert {a["subject"].split(":")[0] for a in alerts[4:]} == {"Deadline in 7 days"}
    assert any(
        "order communicated 10 Aug 2026: safe date 7 Nov 2026, statutory 10 Nov 2026" in a["body"]
        for a in alerts[4:]
    )


def test_a_deadline_set_by_hand_or_closed_is_never_overwritten(
    firm: psycopg.Connection[Any],
) -> None:
    event = record_event(firm, "order_communicated", "2026-08-31")
    manual = firm.execute(
        "INSERT INTO litigation.deadlines (tenant_id, case_id, kind, due_on, owner_id)"
        " VALUES (1, 1, 'Collect documents from client', '2026-09-15', 3) RETURNING id"
    ).fetchone()
    assert manual is not None
    # a person moves the appeal's date earlier, and marks the payment made
    firm.execute(
        "UPDATE litigation.deadlines SET due_on = '2026-11-20' WHERE event_id = %s AND rule_key = 'appeal-107'",
        (event,),
    )
    firm.execute(
        "UPDATE litigation.deadlines SET status = 'met' WHERE event_id = %s AND rule_key = 'payment-78'",
        (event,),
    )
    firm.execute(
        "UPDATE litigation.case_events SET event_on = '2026-09-10' WHERE id = %s", (event,)
    )
    found = deadlines_of(firm, event)
    assert found["appeal-107"]["origin"] == "overridden"
    assert found["appeal-107"]["due_on"] == D("2026-11-20")
    assert found["payment-78"]["status"] == "met" and found["payment-78"]["due_on"] == D(
        "2026-11-28"
    )
    assert firm.execute(
        "SELECT due_on, origin FROM litigation.deadlines WHERE id = %s", (manual[0],)
    ).fetchone() == (D("2026-09-15"), "manual")
    # the overridden date is alerted, and says where it came from
    run(firm, "deadline-alerts", at("2026-11-13 09:05"))
    body = notifications(firm, "deadline-alert")[0]["body"]
    assert "Date set by hand; the rule gave: Appeal to Appellate Authority" in body

    # the event recorded as the wrong kind: what a person touched stays, unlinked when removed
    firm.execute("UPDATE litigation.case_events SET kind = 'order_issued' WHERE id = %s", (event,))
    assert set(deadlines_of(firm, event)) == {
        "appeal-107",
        "payment-78",
        "rectification-161",
        "rectification-limit-161",
    }
    firm.execute("DELETE FROM litigation.case_events WHERE id = %s", (event,))
    kept = firm.execute(
        "SELECT rule_key, origin, status, event_id FROM litigation.deadlines"
        " WHERE rule_key IS NOT NULL ORDER BY rule_key"
    ).fetchall()
    assert kept == [
        ("appeal-107", "overridden", "open", None),
        ("payment-78", "computed", "met", None),
    ]


def test_operators_extend_the_rules_and_deadlines_follow(
    firm: psycopg.Connection[Any], operator: psycopg.Connection[Any]
) -> None:
    event = record_event(firm, "tribunal_order_received", "2026-01-10")
    result = operator.execute(
        "SELECT gstjobs.define_deadline_rule(%s, 'checked against the Act')",
        (Jsonb({"key": "appeal-117", "verified_on": "2026-11-29", "period": 90}),),
    ).fetchone()
    assert result is not None and result[0]["deadlines_recomputed"] == 1
    assert deadlines_of(firm, event)["appeal-117"]["due_on"] == D("2026-04-10")
    # a new rule, counted from the same event
    operator.execute(
        "SELECT gstjobs.define_deadline_rule(%s)",
        (
            Jsonb(
                {
                    "key": "certified-copy",
                    "name": "Apply for a certified copy",
                    "section": "117",
                    "source": "firm practice",
                    "trigger_event": "tribunal_order_received",
                    "period": 7,
                    "unit": "days",
                    "binds": "taxpayer",
                    "forum": "high_court",
                    "rolls_forward": True,
                }
            ),
        ),
    )
    # 10 Jan + 7 days = Sat 17 Jan: open (with no calendar only Sundays close)
    assert deadlines_of(firm, event)["certified-copy"]["statutory_on"] == D("2026-01-17")
    audit = firm.execute(
        "SELECT action, reason FROM gstjobs.audit_log WHERE action LIKE 'deadline-rule.%' ORDER BY id"
    ).fetchall()
    assert audit == [
        ("deadline-rule.change", "checked against the Act"),
        ("deadline-rule.add", None),
    ]


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"key": "appeal-107", "perod": 2}, errors.InvalidParameterValue),
        ({"name": "no key"}, errors.InvalidParameterValue),
        ({"key": "appeal-107", "unit": "weeks"}, errors.CheckViolation),
        ({"key": "appeal-107", "period": "three"}, errors.InvalidTextRepresentation),
        ({"key": "new-rule", "name": "incomplete"}, errors.NotNullViolation),
        ({"key": "x'; DROP TABLE litigation.deadlines; --", "name": "x"}, errors.NotNullViolation),
    ],
)
def test_a_bad_rule_is_refused_and_changes_nothing(
    operator: psycopg.Connection[Any], rule: dict[str, Any], error: type[Exception]
) -> None:
    before = operator.execute(
        "SELECT md5(string_agg(to_jsonb(r)::text, ',' ORDER BY key)) FROM gstjobs.deadline_rules AS r"
    ).fetchone()
    with pytest.raises(error):
        operator.execute("SELECT gstjobs.define_deadline_rule(%s)", (Jsonb(rule),))
    after = operator.execute(
        "SELECT md5(string_agg(to_jsonb(r)::text, ',' ORDER BY key)) FROM gstjobs.deadline_rules AS r"
    ).fetchone()
    assert after == before


def test_a_corrected_annual_return_due_date_moves_the_limitation(
    firm: psycopg.Connection[Any], operator: psycopg.Connection[Any]
) -> None:
    event = record_event(firm, "scn_74_issued", "2025-10-06", financial_year="2019-20")
    operator.execute(
        "SELECT gstjobs.set_annual_return_due_date('2019-20', '2021-04-30', 'example correction')"
    )
    assert deadlines_of(firm, event)["order-limit-74"]["due_on"] == D("2026-04-30")


def test_the_firm_records_events_for_itself_only(firm: psycopg.Connection[Any]) -> None:
    with firm.transaction():
        firm.execute("SET LOCAL ROLE gstjobs_app")
        firm.execute("SELECT set_config('app.tenant_id', '1', true)")
        event = record_event(firm, "order_communicated", "2026-08-31")
        # the computing ran as the owner, for this firm, and the firm sees the result
        assert set(deadlines_of(firm, event)) == {"appeal-107", "payment-78"}
        assert firm.execute("SELECT count(*) FROM gstjobs.deadline_rules").fetchone() == (19,)
        with pytest.raises(errors.InsufficientPrivilege), firm.transaction():
            firm.execute(
                "UPDATE litigation.case_events SET unresolved = '[]' WHERE id = %s", (event,)
            )
        with pytest.raises(errors.InsufficientPrivilege), firm.transaction():
            record_event(firm, "order_communicated", "2026-08-31", tenant_id=2, case_id=3)
    with firm.transaction():
        firm.execute("SET LOCAL ROLE gstjobs_app")
        firm.execute("SELECT set_config('app.tenant_id', '2', true)")
        assert firm.execute("SELECT count(*) FROM litigation.case_events").fetchone() == (0,)
        assert firm.execute("SELECT count(*) FROM litigation.deadlines").fetchone() == (0,)


def test_the_departments_lapsed_limit_is_not_a_deadline_the_firm_missed(
    firm: psycopg.Connection[Any],
) -> None:
    # reply and penalty waiver passed in Dec 2022 (the firm's); the order limit in Feb 2023
    record_event(firm, "scn_73_issued", "2022-11-01", financial_year="2017-18")
    run(firm, "analytics-snapshot", at("2026-11-20 23:50"))
    missed = firm.execute(
        "SELECT deadlines_missed FROM gstjobs.analytics_snapshots WHERE tenant_id = 1"
    ).fetchone()
    assert missed == (2,)


def test_the_safe_date_is_an_open_day_on_or_before_the_safe_reading(
    firm: psycopg.Connection[Any],
) -> None:
    # a firm whose offices close on Saturdays and Sundays
    firm.execute(
        "INSERT INTO litigation.holiday_calendars (tenant_id, name, closed_weekdays)"
        " VALUES (1, 'Mumbai offices', '{6,7}')"
    )
    event = record_event(firm, "order_communicated", "2026-08-31")
    appeal = deadlines_of(firm, event)["appeal-107"]
    # 90 days = Sun 29 Nov: back over Sunday and Saturday to Fri 27 Nov; the last day, Mon
    # 30 Nov, is open
    assert dates(appeal) == (D("2026-11-27"), D("2026-11-30"), D("2026-12-30"))
    assert appeal["computation"]["safe_moved_back"] == [
        {"on": "2026-11-29", "closed": "Sunday"},
        {"on": "2026-11-28", "closed": "Saturday"},
    ]
    # a period in days: the safe date is the last day itself, which falls on a Sunday; the
    # law moves the last day on to Monday, the safe date back to Friday
    event = record_event(firm, "scrutiny_notice_served", "2026-09-05", notice_period_days=15)
    reply = deadlines_of(firm, event)["scrutiny-reply"]
    assert dates(reply) == (D("2026-09-18"), D("2026-09-21"), None)


def test_an_upgrade_counts_again_the_deadlines_of_an_older_counting(
    firm: psycopg.Connection[Any],
) -> None:
    appeal = record_event(firm, "order_communicated", "2026-08-31")
    kept = record_event(firm, "order_communicated", "2026-07-31")
    # as the counting before 0008 left them: Saturday closed with no calendar, safe date on
    # a Sunday; one of them met, which no recomputation touches
    with firm.transaction():
        firm.execute("SET LOCAL gstjobs.computing_deadlines = 'on'")
        firm.execute(
            "UPDATE litigation.deadlines SET due_on = '2026-11-29', computation = computation"
            " - 'counting' || '{\"calendar\": \"none recorded: Saturdays and Sundays closed\"}'"
            " WHERE event_id = %s AND rule_key = 'appeal-107'",
            (appeal,),
        )
        firm.execute(
            "UPDATE litigation.deadlines SET due_on = '2026-10-31', status = 'met',"
            " computation = computation - 'counting' WHERE event_id = %s",
            (kept,),
        )
    before_kept = deadlines_of(firm, kept)

    # the re-applied part of `alembic upgrade head`
    with firm.transaction():
        apply_reapplied(firm, "gstjobs_alembic_version")

    recounted = deadlines_of(firm, appeal)["appeal-107"]
    assert dates(recounted) == (D("2026-11-28"), D("2026-11-30"), D("2026-12-30"))
    assert recounted["computation"]["calendar"] == "none recorded: Sundays closed"
    assert recounted["origin"] == "computed"
    assert deadlines_of(firm, kept) == before_kept

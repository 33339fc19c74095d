"""Where each table of gstjobs and of the litigation schema would live on a distributed
PostgreSQL (Citus: docs/SCALING.md): the one place that says so. A catalog test
(tests/integration/test_citus_readiness.py) holds every table of both schemas to it, and every
key and foreign key to what its place allows.

- distributed: per-firm rows, spread over the nodes by `tenant_id`; every primary key and
  unique constraint includes `tenant_id`, and a foreign key to another distributed table
  matches `tenant_id` to `tenant_id` (the two are co-located: the join stays on one node).
- reference: small, shared, read with per-firm rows (rules, the firms themselves, the job
  registry and ledger the per-firm rows point to): a copy on every node.
- coordinator: on the coordinator, where pg_cron and the runner run. The runner's own tables
  are never in a statement with a distributed table. The outbox is the one that is, by design
  (docs/SCALING.md, "The outbox stays on the coordinator"): the jobs write it from the firms'
  rows (Citus pulls those rows to the coordinator), and dispatch claims from it across every
  firm, most urgent first, FOR UPDATE SKIP LOCKED, which Citus allows on one node only.
"""

DISTRIBUTED = "distributed"
REFERENCE = "reference"
COORDINATOR = "coordinator"

PLACEMENT = {
    # the firms' own data
    "litigation.case_events": DISTRIBUTED,
    "litigation.cases": DISTRIBUTED,
    "litigation.clients": DISTRIBUTED,
    "litigation.deadlines": DISTRIBUTED,
    "litigation.hearings": DISTRIBUTED,
    "litigation.holiday_calendars": DISTRIBUTED,
    "litigation.holidays": DISTRIBUTED,
    "litigation.members": DISTRIBUTED,
    "litigation.notification_defaults": DISTRIBUTED,
    "litigation.notification_preferences": DISTRIBUTED,
    "litigation.tasks": DISTRIBUTED,
    "litigation.whatsapp_consents": DISTRIBUTED,
    # one row a firm, joined by every per-firm statement (its zone, its slot's local time)
    "litigation.tenants": REFERENCE,
    # what the jobs write per firm
    "gstjobs.analytics_snapshots": DISTRIBUTED,
    "gstjobs.slots": DISTRIBUTED,
    # statutory rules and dates, the same for every firm
    "gstjobs.annual_return_due_dates": REFERENCE,
    "gstjobs.case_event_kinds": REFERENCE,
    "gstjobs.deadline_rules": REFERENCE,
    "gstjobs.notification_kinds": REFERENCE,
    "gstjobs.notified_dates": REFERENCE,
    # the registry and the ledger, which per-firm rows point to (slots.job, *.run_id)
    "gstjobs.jobs": REFERENCE,
    "gstjobs.runs": REFERENCE,
    # the outbox: written from the firms' rows, claimed across every firm by dispatch
    "gstjobs.notifications": COORDINATOR,
    # the runner's own
    "gstjobs.audit_log": COORDINATOR,
    "gstjobs.health_reports": COORDINATOR,
    "gstjobs.installation": COORDINATOR,
    "gstjobs.installed_extensions": COORDINATOR,
    "gstjobs.schema_objects": COORDINATOR,
    "gstjobs.secrets": COORDINATOR,
    "gstjobs.send_rates": COORDINATOR,
    "gstjobs.settings": COORDINATOR,
}

# Where a foreign key may point from each place (Citus: a distributed table may refer to a
# co-located distributed table or to a reference table; a reference table only to another).
MAY_REFER_TO = {
    DISTRIBUTED: {DISTRIBUTED, REFERENCE},
    REFERENCE: {REFERENCE},
    COORDINATOR: {COORDINATOR, REFERENCE},
}

# The coordinator table that statements may join with distributed tables (Citus moves the
# rows it needs between the nodes: citus.local_table_join_policy); no other may be.
MEETS_FIRM_ROWS = {"gstjobs.notifications"}

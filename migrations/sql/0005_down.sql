-- Back to 0004: the limits of 0005 go, and their functions.

ALTER TABLE litigation.tenants
    DROP CONSTRAINT tenants_name_plain, DROP CONSTRAINT tenants_email_from_address,
    DROP CONSTRAINT tenants_reply_to_address, DROP CONSTRAINT tenants_escalation_delay_bounded;
ALTER TABLE litigation.members
    DROP CONSTRAINT members_name_plain, DROP CONSTRAINT members_email_address;
ALTER TABLE litigation.clients DROP CONSTRAINT clients_name_plain;
ALTER TABLE litigation.cases DROP CONSTRAINT cases_reference_plain;
ALTER TABLE litigation.hearings
    DROP CONSTRAINT hearings_forum_plain, DROP CONSTRAINT hearings_venue_plain,
    DROP CONSTRAINT hearings_starts_at_bounded;
ALTER TABLE litigation.tasks DROP CONSTRAINT tasks_title_plain, DROP CONSTRAINT tasks_times_bounded;
ALTER TABLE litigation.deadlines
    DROP CONSTRAINT deadlines_kind_plain, DROP CONSTRAINT deadlines_due_on_bounded;
ALTER TABLE litigation.case_events
    DROP CONSTRAINT case_events_document_ref_plain, DROP CONSTRAINT case_events_event_on_bounded;
ALTER TABLE litigation.holiday_calendars DROP CONSTRAINT holiday_calendars_name_plain;
ALTER TABLE litigation.holidays DROP CONSTRAINT holidays_name_plain;

DROP FUNCTION litigation.is_plain_text(text), litigation.is_email_address(text),
    litigation.is_working_time(timestamptz);

-- The weekly summary (docs/DELIVERY.md, "What a member receives, and when"): deadline-alerts'
-- slot of a Monday writes each member one message listing their open deadlines due in the
-- next 14 days (a partner: the firm's). A kind like the others: email by default, in the
-- digest where chosen; never WhatsApp (a list is not a template message).
SET ROLE gstjobs_owner;

INSERT INTO gstjobs.notification_kinds (kind, about) VALUES
    ('deadlines-ahead', 'every Monday: the open deadlines due in the next 14 days (the member''s own; a partner''s: the firm''s), by email or in the digest');

RESET ROLE;

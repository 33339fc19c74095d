"""dispatch-notifications: deliver the outbox by SMTP and by WhatsApp (Cloud-API-shaped HTTP).

Each call of the body claims up to dispatch.batch_size due notifications (FOR UPDATE SKIP
LOCKED, most urgent first), delivers them, records each outcome, and answers {"more": true}
while there is more to do within the run's limits; the runner commits after every call. A
notification is marked sent only after the server accepted it. The one way a message can go
twice: the server accepted it and the backend died before that batch's commit; with the
default batch of 1 that is the single message in flight (each email's Message-ID is derived
from its dedupe key, so a receiving system can tell the copy).

Failures: SMTP 4xx, connection failures, timeouts and HTTP 5xx are retried after 1 minute,
doubling up to 1 hour, with +-20% jitter (HTTP 429: after its Retry-After); SMTP 5xx and other
HTTP 4xx are permanent, and so is a message that cannot be built from what was stored (an
address the email package refuses): each is that message's failure, never the run's. After dispatch.max_attempts attempts, or on a permanent refusal, the
notification is dead. Settings are read once per run; secrets through gstjobs.secret(), which
only the owner may call, and they appear in no error, log line or ledger row.
"""

# The server compiles plpy/common.py into this module's namespace (cli/gstjobs/resources.py):
# these names come from there. Never run, so nothing is imported in a new session.
if False:
    from common import enter_run, plan

# Every module is imported where a message is built or sent, none at the top: pg_cron runs
# this job every minute in a new session and most runs have nothing to send: importing json,
# smtplib, ssl, email, urllib, datetime, hashlib, random and contextlib was most of such a
# run's time (docs/BENCHMARKS.md has the figures).

CLAIM = """
SELECT n.id, n.tenant_id, n.kind, n.channel, n.recipient, n.subject, n.body,
       n.template::text AS template, n.dedupe_key, n.attempts,
       firm.email_from, firm.reply_to
FROM gstjobs.notifications AS n
LEFT JOIN litigation.tenants AS firm ON firm.id = n.tenant_id
WHERE n.status IN ('pending', 'failed') AND n.next_attempt_at <= $1
  AND n.channel = $2
  AND ($3::bigint IS NULL OR n.tenant_id = $3)
  AND (n.tenant_id IS NULL OR n.tenant_id <> ALL ($5::bigint[]))
ORDER BY n.urgency, n.next_attempt_at, n.id
LIMIT $4
FOR UPDATE OF n SKIP LOCKED
"""

RECORD = """
UPDATE gstjobs.notifications
SET status = $2, attempts = attempts + 1, next_attempt_at = $3, last_error = $4,
    provider_reply = $5, last_attempt_at = clock_timestamp(),
    sent_at = CASE WHEN $2 = 'sent' THEN clock_timestamp() END
WHERE id = $1
"""

# a secret is read only while the endpoint is the one it was set for (else NULL)
SETTINGS = """
SELECT d.key, CASE WHEN d.kind = 'secret' THEN gstjobs.secret(d.key)
                   ELSE coalesce(s.value, d.default_value) END AS value
FROM gstjobs.setting_defaults AS d
LEFT JOIN gstjobs.settings AS s ON s.key = d.key
WHERE d.key LIKE 'smtp.%' OR d.key LIKE 'whatsapp.%' OR d.key LIKE 'dispatch.%'
"""

# what stands between a channel and delivery (plpy/settings.py), asked once a run, before the
# first message: a secret set for another endpoint, a credential that would go in clear, a
# host that resolves to a link-local address
PROBLEMS = "SELECT email, whatsapp FROM gstjobs.delivery_problems(true)"

DUE = """
SELECT channel, count(*) AS due FROM gstjobs.notifications
WHERE status IN ('pending', 'failed') AND next_attempt_at <= $1
  AND ($2::bigint IS NULL OR tenant_id = $2)
GROUP BY channel
"""

CHANNELS = ("email", "whatsapp")


class Retry(Exception):
    """A failure worth another attempt; after seconds, if the server said when."""

    def __init__(self, message, after=None, channel_down=False):
        super().__init__(message)
        self.after = after
        self.channel_down = channel_down


class Refused(Exception):
    """A permanent refusal: no attempt will do better."""


def backoff(attempts, now):
    """When to try again after the attempts-th failure: 1 min doubling to 1 h, +-20%."""
    import random
    from datetime import timedelta

    delay = min(60 * 2 ** (attempts - 1), 3600)
    return now + timedelta(seconds=delay * random.uniform(0.8, 1.2))


def message_id(dedupe_key, sender):
    import hashlib

    domain = sender.rsplit("@", 1)[-1] or "gstjobs"
    return f"<{hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]}@{domain}>"


def build_email(note, settings, now):
    """The message, or Refused when what was stored cannot make one."""
    try:
        email = compose_email(note, settings, now)
        email.as_bytes()  # what the server will be sent: made here, where a failure is caught
        return email
    except Exception as error:  # the email package's, on stored text: ValueError, and worse
        raise Refused(f"the message cannot be built: {type(error).__name__}: {error}") from None


def one_line(text):
    """A header's text: control characters and line separators become spaces (the columns
    refuse them since revision 0005; rows stored before may hold them)."""
    return "".join(
        " " if ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" else c for c in text
    )


def compose_email(note, settings, now):
    from email.message import EmailMessage
    from email.utils import format_datetime

    sender = note["email_from"] or settings["smtp.from"]
    email = EmailMessage()
    email["From"] = sender
    email["To"] = note["recipient"]
    reply_to = note["reply_to"] or settings["smtp.reply_to"]
    if reply_to:
        email["Reply-To"] = reply_to
    email["Subject"] = one_line(note["subject"])
    email["Date"] = format_datetime(now)
    # the same notification always has the same Message-ID: a copy can be recognised
    email["Message-ID"] = message_id(note["dedupe_key"], sender)
    email.set_content(note["body"], charset="utf-8")
    return email


class Mailer:
    """One SMTP connection for the run, opened on first use."""

    def __init__(self, settings):
        self.settings = settings
        self.connection = None

    def connect(self):
        import smtplib
        import ssl

        s = self.settings
        timeout = int(s["smtp.timeout_seconds"])
        try:
            # certificates are verified, host name included: against the system's CAs, or the
            # CA file of smtp.ca_file (a path on the database server)
            context = ssl.create_default_context(cafile=s["smtp.ca_file"] or None)
            if s["smtp.tls"] == "tls":
                smtp = smtplib.SMTP_SSL(
                    s["smtp.host"], int(s["smtp.port"]), timeout=timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(s["smtp.host"], int(s["smtp.port"]), timeout=timeout)
                if s["smtp.tls"] == "starttls":
                    smtp.starttls(context=context)
            smtp.ehlo()
            if s["smtp.user"]:
                smtp.login(s["smtp.user"], s["smtp.password"] or "")
        except smtplib.SMTPAuthenticationError as error:
            raise Retry(f"SMTP login refused: {error.smtp_code}", channel_down=True) from None
        except (OSError, smtplib.SMTPException) as error:
            raise Retry(
                f"SMTP server {s['smtp.host']}:{s['smtp.port']} unreachable: "
                f"{type(error).__name__}: {error}",
                channel_down=True,
            ) from None
        self.connection = smtp

    def send(self, email):
        """The server's reply on acceptance; Retry or Refused otherwise."""
        import smtplib

        if self.connection is None:
            self.connect()
        smtp = self.connection
        try:
            code, reply = smtp.mail(email["From"])
            if code >= 400:
                # refused before any recipient: the sender or the session is wrong, not this
                # message; retry later, and try no more messages this run
                self.reset()
                raise Retry(
                    f"SMTP {code} at MAIL FROM: {reply.decode(errors='replace')[:300]}",
                    channel_down=True,
                )
            code, reply = smtp.rcpt(email["To"])
            if code >= 400:
                self.reset()
                raise self.answer("RCPT TO", code, reply)
            code, reply = smtp.data(email.as_bytes())
            if code >= 400:
                self.reset()
                raise self.answer("DATA", code, reply)
            return f"{code} {reply.decode(errors='replace')}"
        except (UnicodeError, ValueError) as error:
            # an address or text the protocol cannot carry: this message's fault, not the server's
            self.reset()
            raise Refused(
                f"SMTP cannot carry the message: {type(error).__name__}: {error}"
            ) from None
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            self.close()
            raise Retry(
                f"SMTP connection lost: {type(error).__name__}: {error}", channel_down=True
            ) from None

    def reset(self):
        """Leave the session clean for the next message after a refusal."""
        import smtplib

        try:
            self.connection.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    @staticmethod
    def answer(step, code, reply):
        text = f"SMTP {code} at {step}: {reply.decode(errors='replace')[:300]}"
        return Refused(text) if code >= 500 else Retry(text)

    def close(self):
        if self.connection is None:
            return
        import contextlib
        import smtplib

        with contextlib.suppress(OSError, smtplib.SMTPException):
            self.connection.quit()
        self.connection = None


def send_whatsapp(note, settings):
    """The message id WhatsApp returned; Retry or Refused otherwise."""
    import json
    import urllib.error
    import urllib.request

    template = json.loads(note["template"] or "{}")
    payload = {
        "messaging_product": "whatsapp",
        "to": note["recipient"].lstrip("+"),
        "type": "template",
        "template": {
            "name": template.get("name", note["kind"]).replace("-", "_"),
            "language": {"code": "en"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": key, "text": str(value)}
                        for key, value in sorted(template.get("params", {}).items())
                    ],
                }
            ],
        },
    }
    request = urllib.request.Request(
        settings["whatsapp.url"].rstrip("/") + "/messages",
        data=json.dumps(payload).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer " + (settings["whatsapp.token"] or ""),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(
            request, timeout=int(settings["whatsapp.timeout_seconds"])
        ) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode(errors="replace")
        text = f"WhatsApp HTTP {error.code}: {detail}"
        if error.code == 429:
            raise Retry(text, after=retry_after(error.headers.get("Retry-After"))) from None
        if error.code >= 500:
            raise Retry(text) from None
        raise Refused(text) from None
    except (OSError, urllib.error.URLError) as error:
        raise Retry(f"WhatsApp unreachable: {type(error).__name__}", channel_down=True) from None
    messages = answer.get("messages") or [{}]
    return messages[0].get("id") or json.dumps(answer)[:300]


def retry_after(header):
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not header:
        return None
    try:
        return max(int(header), 1)
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            return max((parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds(), 1)
        except (TypeError, ValueError):
            return None


def configured(channel, settings):
    """A channel without a server to send to is left alone: its messages wait, no attempt spent."""
    return bool(settings["smtp.host"] if channel == "email" else settings["whatsapp.url"])


def run_state(run_id):
    """What this run has done so far: kept in SD between the body's calls (one session)."""
    state = SD.get("run")
    if state is None or state["run_id"] != run_id:
        if state is not None:
            state["mailer"].close()
        settings = {r["key"]: r["value"] for r in plpy.execute(plan("settings", SETTINGS, []))}
        state = SD["run"] = {
            "run_id": run_id,
            "settings": settings,
            "mailer": Mailer(settings),
            "attempted": dict.fromkeys(CHANNELS, 0),
            "firms": {},
            "down": set(),
            "problems": None,
        }
    return state


def channel_problem(channel, state):
    """Why this run may not send on channel, or None (asked once a run)."""
    if state["problems"] is None:
        state["problems"] = dict(plpy.execute(plan("problems", PROBLEMS, []))[0])
    return state["problems"][channel]


def dispatch(run_id, as_of, tenant_id, dry_run):
    enter_run(run_id, "dispatch-notifications")
    if dry_run:
        # never contact a server in a dry run: say what is due
        due = plpy.execute(plan("due", DUE, ["timestamptz", "bigint"]), [as_of, tenant_id])
        return {f"due.{r['channel']}": r["due"] for r in due}
    state = run_state(run_id)
    settings = state["settings"]
    per_run = int(settings["dispatch.per_run_limit"])
    per_firm = int(settings["dispatch.per_firm_limit"])
    batch = int(settings["dispatch.batch_size"])
    full_firms = [f for f, n in state["firms"].items() if per_firm and n >= per_firm]
    counts = {"sent": 0, "retried": 0, "dead": 0}
    more = False
    for channel in CHANNELS:
        room = min(batch, per_run - state["attempted"][channel])
        if room <= 0 or channel in state["down"] or not configured(channel, settings):
            continue
        notes = plpy.execute(
            plan("claim", CLAIM, ["timestamptz", "text", "bigint", "integer", "bigint[]"]),
            [as_of, channel, tenant_id, room, full_firms],
        )
        problem = notes and channel_problem(channel, state)
        if problem:
            # nothing is attempted: the messages wait, and the run fails saying why
            state["down"].add(channel)
            counts["error"] = "; ".join(
                filter(None, (counts.get("error"), f"{channel} not sent: {problem}"))
            )
            continue
        # a full batch: there may be more due on this channel
        more = more or len(notes) == room
        for note in notes:
            if per_firm and state["firms"].get(note["tenant_id"], 0) >= per_firm:
                continue  # the firm reached its limit within this batch: stays pending
            outcome = deliver(note, state)
            counts[outcome] += 1
            # every attempt counts against the run's limit, so a storm of refusals is bounded
            state["attempted"][channel] += 1
            if outcome == "sent" and note["tenant_id"] is not None:
                state["firms"][note["tenant_id"]] = state["firms"].get(note["tenant_id"], 0) + 1
            if channel in state["down"]:
                break
    more = more and any(
        state["attempted"][c] < per_run and c not in state["down"] for c in CHANNELS
    )
    if not more:
        state["mailer"].close()
    counts["more"] = more
    return counts


def deliver(note, state):
    """Send one notification and record what happened: 'sent', 'retried' or 'dead'."""
    from datetime import UTC, datetime, timedelta

    settings = state["settings"]
    now = datetime.now(UTC)
    attempts = note["attempts"] + 1
    record = plan("record", RECORD, ["bigint", "text", "timestamptz", "text", "text"])
    try:
        if note["channel"] == "email":
            reply = state["mailer"].send(build_email(note, settings, now))
        else:
            reply = send_whatsapp(note, settings)
    except Refused as refusal:
        plpy.execute(record, [note["id"], "dead", now, str(refusal), None])
        return "dead"
    except Retry as failure:
        if failure.channel_down:
            state["down"].add(note["channel"])
        if attempts >= int(settings["dispatch.max_attempts"]):
            plpy.execute(
                record, [note["id"], "dead", now, f"{failure} (attempt {attempts}, the last)", None]
            )
            return "dead"
        when = now + timedelta(seconds=failure.after) if failure.after else backoff(attempts, now)
        plpy.execute(record, [note["id"], "failed", when, f"{failure} (attempt {attempts})", None])
        return "retried"
    plpy.execute(record, [note["id"], "sent", now, None, reply])
    return "sent"

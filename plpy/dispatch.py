"""dispatch-notifications: deliver the outbox by SMTP and by WhatsApp (Cloud-API-shaped HTTP).

A run keeps delivering while messages are due, for at most dispatch.run_seconds, within each
channel's rate (a token bucket in gstjobs.send_rates, shared by every dispatcher), with up to
smtp.connections SMTP sessions and whatsapp.connections HTTP requests at once. Sending happens
in worker threads that do nothing but network I/O; only this function's own thread touches
the database. Each call of the body records the outcomes that came back, claims more messages
(FOR UPDATE SKIP LOCKED, most urgent first, marked claimed_by this run and committed, so that
a claim outlives the runner's commit after every call) and hands them to the workers.

A notification is marked sent only after the server accepted it. The one way a message can go
twice: the server accepted it and the run ended before recording it (a crash); the next run
releases the claims of runs that are over and sends them again, with the same Message-ID. At
most the messages in flight at that moment: 2 x connections per channel.

Failures: SMTP 4xx, connection failures, timeouts and HTTP 5xx are retried after 1 minute,
doubling up to 1 hour, with +-20% jitter; HTTP 429 after its Retry-After, spending no attempt
(the provider's rate, not the message, is at fault) and pausing the channel's bucket for every
dispatcher; SMTP 5xx and other HTTP 4xx are permanent, and so is a message that cannot be built
from what was stored (an address the email package refuses): each is that message's failure,
never the run's. After dispatch.max_attempts attempts, or on a permanent refusal, the
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

# Claimed: marked with the run's id, so that the claim holds across the runner's commits while
# the message is in flight; the run records every outcome, clearing the mark.
CLAIM = """
WITH due AS (
    SELECT n.id FROM gstjobs.notifications AS n
    WHERE n.status IN ('pending', 'failed')
      AND n.next_attempt_at <= $1 + make_interval(secs => $2)
      AND n.channel = $3 AND n.claimed_by IS NULL
      AND ($4::bigint IS NULL OR n.tenant_id = $4)
      AND (n.tenant_id IS NULL OR n.tenant_id <> ALL ($5::bigint[]))
    ORDER BY n.urgency, n.next_attempt_at, n.id
    LIMIT $6
    FOR UPDATE OF n SKIP LOCKED
), claimed AS (
    UPDATE gstjobs.notifications AS n SET claimed_by = $7
    FROM due WHERE n.id = due.id
    RETURNING n.id, n.tenant_id, n.kind, n.channel, n.recipient, n.subject, n.body,
              n.template::text AS template, n.dedupe_key, n.attempts, n.urgency,
              n.next_attempt_at
)
SELECT c.*, firm.email_from, firm.reply_to
FROM claimed AS c
LEFT JOIN litigation.tenants AS firm ON firm.id = c.tenant_id
ORDER BY c.urgency, c.next_attempt_at, c.id
"""

# an attempt's outcome: sent, failed (with when to try again) or dead
RECORD = """
UPDATE gstjobs.notifications
SET status = $2, attempts = attempts + 1, next_attempt_at = $3, last_error = $4,
    provider_reply = $5, last_attempt_at = clock_timestamp(),
    sent_at = CASE WHEN $2 = 'sent' THEN clock_timestamp() END, claimed_by = NULL
WHERE id = $1 AND claimed_by = $6
"""

# given back unsent, no attempt spent: the channel went down before its turn, or the provider
# asked for a pause (HTTP 429: then $3 is when, and $2 says so)
GIVE_BACK = """
UPDATE gstjobs.notifications
SET claimed_by = NULL, next_attempt_at = greatest(next_attempt_at, $3),
    last_error = coalesce($2, last_error)
WHERE id = ANY ($1::bigint[]) AND claimed_by = $4
"""

# Claims left by runs that are over (a crash, a killed session): their messages may or may not
# have reached the server; they are sent again (same Message-ID). Asked once a run, after
# start_run marked such runs crashed.
RELEASE = """
UPDATE gstjobs.notifications AS n SET claimed_by = NULL
WHERE n.claimed_by IS NOT NULL
  AND NOT EXISTS (SELECT FROM gstjobs.runs AS r
                  WHERE r.id = n.claimed_by AND r.status = 'running')
"""

# Up to $2 tokens from the channel's bucket: refilled at $3 a second since it was last taken
# from, holding at most $4 (a tenth of a second's worth: a burst no provider counting per
# second would refuse). Row-locked until the call's commit, a moment later, so that concurrent
# dispatchers share the one rate. Answers how many were granted and, when none, how long until
# the next one.
TAKE = """
WITH bucket AS (
    SELECT b.channel, clock_timestamp() AS now,
           least($4::float8, b.tokens + $3::float8
                 * extract(epoch FROM clock_timestamp() - b.refilled_at)::float8) AS available
    FROM gstjobs.send_rates AS b WHERE b.channel = $1
    FOR UPDATE
), granted AS (
    SELECT bucket.*, greatest(least($2, floor(bucket.available)), 0)::integer AS granted
    FROM bucket
)
UPDATE gstjobs.send_rates AS b
SET tokens = g.available - g.granted, refilled_at = g.now
FROM granted AS g WHERE b.channel = g.channel
RETURNING g.granted, greatest((1 - (g.available - g.granted)) / $3::float8, 0) AS wait_seconds
"""

# tokens claimed for messages that were not there, given back
REFUND = """
UPDATE gstjobs.send_rates SET tokens = least(tokens + $2, $3::float8) WHERE channel = $1
"""

# the provider said "too many": nobody sends on the channel for $2 seconds
PAUSE = """
UPDATE gstjobs.send_rates
SET tokens = least(tokens, 0) - $2::float8 * $3::float8, refilled_at = clock_timestamp()
WHERE channel = $1
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

    def __init__(self, message, after=None, channel_down=False, throttled=False):
        super().__init__(message)
        self.after = after
        self.channel_down = channel_down
        self.throttled = throttled  # HTTP 429: the provider's rate, not this message


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
            raise Retry(
                text, after=retry_after(error.headers.get("Retry-After")), throttled=True
            ) from None
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


def quiet_thread():
    """A worker thread takes none of the server process's signals: they belong to the thread
    that runs PostgreSQL's code (a cancel, a terminate, a timeout)."""
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


class Channel:
    """One channel's senders for a run: worker threads, each with its own connection, doing
    nothing but network I/O; the run's own thread claims, hands out and records."""

    def __init__(self, name, settings):
        import threading

        self.name = name
        self.settings = settings
        prefix = "smtp" if name == "email" else "whatsapp"
        self.width = int(settings[f"{prefix}.connections"])
        self.rate = float(settings[f"{prefix}.rate_per_second"])
        self.burst = max(1.0, self.rate / 10)
        self.pool = None
        self.local = threading.local()
        self.mailers = []
        self.lock = threading.Lock()
        self.in_flight = {}  # future: the notification it is sending
        self.down = False  # set by a worker: the server is gone or refuses the session
        self.proven = False  # a message went through in this run: all connections may open
        self.stopped = None  # why this run sends no more on the channel
        self.ready_at = 0.0  # monotonic time of the next token, when the bucket was empty

    def room(self):
        """How many more may be handed out now: one until the server has accepted a message
        in this run (a dead server costs one attempt, not one per connection), then two per
        connection (each has the next message ready when it finishes one)."""
        if self.stopped or self.down:
            return 0
        return (2 * self.width if self.proven else 1) - len(self.in_flight)

    def hand_out(self, notes):
        from concurrent.futures import ThreadPoolExecutor

        if self.pool is None:
            self.pool = ThreadPoolExecutor(
                self.width, thread_name_prefix=f"gstjobs-{self.name}", initializer=quiet_thread
            )
        for note in notes:
            self.in_flight[self.pool.submit(self.attempt, note)] = note

    def attempt(self, note):
        """In a worker: (outcome, detail) of sending note. Never raises."""
        from datetime import UTC, datetime

        if self.down:
            return "untried", None
        try:
            if self.name == "email":
                reply = self.mailer().send(build_email(note, self.settings, datetime.now(UTC)))
            else:
                reply = send_whatsapp(note, self.settings)
        except Refused as refusal:
            return "refused", str(refusal)
        except Retry as failure:
            if failure.channel_down:
                self.down = True
            return ("throttled" if failure.throttled else "retry"), failure
        except Exception as error:  # a worker must not die with its message unrecorded
            return "retry", Retry(f"{type(error).__name__}: {error}")
        return "sent", reply

    def mailer(self):
        mailer = getattr(self.local, "mailer", None)
        if mailer is None:
            mailer = self.local.mailer = Mailer(self.settings)
            with self.lock:
                self.mailers.append(mailer)
        return mailer

    def finished(self):
        """(notification, outcome, detail) of every send that has ended."""
        done = [future for future in self.in_flight if future.done()]
        return [(self.in_flight.pop(future), *future.result()) for future in done]

    def close(self, wait=False):
        if self.pool is not None:
            self.pool.shutdown(wait=wait)
        for mailer in self.mailers:
            mailer.close()


class Run:
    """What a run has under way, kept in SD between the body's calls (one session)."""

    def __init__(self, run_id, as_of):
        import time

        self.run_id = run_id
        self.as_of = as_of
        self.started = time.monotonic()
        self.settings = {
            r["key"]: r["value"] for r in plpy.execute(plan("settings", SETTINGS, []))
        }
        self.seconds = int(self.settings["dispatch.run_seconds"])
        self.channels = {name: Channel(name, self.settings) for name in CHANNELS}
        self.firms = {}
        self.problems = None

    def elapsed(self):
        import time

        return time.monotonic() - self.started

    def over(self):
        """Past its time: claims nothing more, so that it ends before the next tick."""
        return self.elapsed() >= self.seconds

    def in_flight(self):
        return [f for channel in self.channels.values() for f in channel.in_flight]

    def wait(self):
        """Until sends come back (at most TICK: a call records what came back meanwhile), or,
        with none under way, until the next token of a channel held back by its rate."""
        import time
        from concurrent.futures import wait

        futures = self.in_flight()
        if futures:
            wait(futures, timeout=TICK)
            return
        ready = [c.ready_at for c in self.channels.values() if c.ready_at]
        if ready:
            time.sleep(min(max(min(ready) - time.monotonic(), 0), TICK * 10))

    def close(self, wait=False):
        for channel in self.channels.values():
            channel.close(wait)


# how long one call of the body waits for sends to come back before recording them
TICK = 0.02


def run_state(run_id, as_of):
    state = SD.get("run")
    if state is None or state.run_id != run_id:
        if state is not None:
            state.close()
        plpy.execute(plan("release", RELEASE, []))
        state = SD["run"] = Run(run_id, as_of)
    return state


def channel_problem(channel, state):
    """Why this run may not send on channel, or None (asked once a run)."""
    if state.problems is None:
        state.problems = dict(plpy.execute(plan("problems", PROBLEMS, []))[0])
    return state.problems[channel]


def dispatch(run_id, as_of, tenant_id, dry_run):
    enter_run(run_id, "dispatch-notifications")
    if dry_run:
        # never contact a server in a dry run: say what is due
        due = plpy.execute(plan("due", DUE, ["timestamptz", "bigint"]), [as_of, tenant_id])
        return {f"due.{r['channel']}": r["due"] for r in due}
    state = run_state(run_id, as_of)
    counts = {"sent": 0, "retried": 0, "dead": 0}
    try:
        state.wait()
        for channel in state.channels.values():
            record(channel, state, counts)
        held_back = False
        if not state.over():
            for channel in state.channels.values():
                held_back = claim(channel, state, tenant_id, counts) or held_back
    except BaseException:
        # no worker outlives the run: their outcomes go unrecorded, and the next run sends
        # those messages again (same Message-ID), as after a crash
        state.close(wait=True)
        SD.pop("run", None)
        raise
    more = held_back or bool(state.in_flight())
    if not more:
        state.close()
        SD.pop("run", None)
    counts["more"] = more
    return counts


def claim(channel, state, tenant_id, counts):
    """Hand channel's workers what is due, as far as room and rate allow. True when due work
    is held back by the rate (the run waits for the next token)."""
    import time

    room = channel.room()
    if room <= 0 or not configured(channel.name, state.settings):
        return False
    taken = plpy.execute(
        plan("take", TAKE, ["text", "integer", "float8", "float8"]),
        [channel.name, room, channel.rate, channel.burst],
    )[0]
    per_firm = int(state.settings["dispatch.per_firm_limit"])
    full_firms = [f for f, n in state.firms.items() if per_firm and n >= per_firm]
    # due by the run's clock: as_of, moved on by the time the run has taken (a message that
    # falls due while the run works, a new one or a retry, is sent by it)
    arguments = [state.as_of, state.elapsed(), channel.name, tenant_id, full_firms]
    if not taken["granted"]:
        channel.ready_at = time.monotonic() + taken["wait_seconds"]
        if state.elapsed() + taken["wait_seconds"] >= state.seconds:
            return False  # no token before the run's time is up (a long pause): the next run
        # held back only if something is due
        return plpy.execute(plan("anything due", ANY_DUE, DUE_TYPES), arguments).nrows() > 0
    channel.ready_at = 0.0
    notes = list(
        plpy.execute(
            plan("claim", CLAIM, CLAIM_TYPES),
            [*arguments, taken["granted"], state.run_id],
        )
    )
    unused = taken["granted"] - len(notes)
    if unused:
        plpy.execute(
            plan("refund", REFUND, ["text", "integer", "float8"]),
            [channel.name, unused, channel.burst],
        )
    if not notes:
        return False
    problem = channel_problem(channel.name, state)
    if problem:
        # nothing is attempted: the messages wait, and the run fails saying why
        channel.stopped = problem
        give_back(channel, state, [n["id"] for n in notes])
        counts["error"] = f"{channel.name} not sent: {problem}"
        return False
    if per_firm:
        kept = []
        for note in notes:
            firm = note["tenant_id"]
            if firm is not None and state.firms.get(firm, 0) >= per_firm:
                give_back(channel, state, [note["id"]])  # the firm's turn is over this run
                continue
            if firm is not None:
                state.firms[firm] = state.firms.get(firm, 0) + 1
            kept.append(note)
        notes = kept
    channel.hand_out(notes)
    return False


DUE_TYPES = ["timestamptz", "float8", "text", "bigint", "bigint[]"]
CLAIM_TYPES = [*DUE_TYPES, "integer", "bigint"]

ANY_DUE = """
SELECT FROM gstjobs.notifications AS n
WHERE n.status IN ('pending', 'failed')
  AND n.next_attempt_at <= $1 + make_interval(secs => $2)
  AND n.channel = $3 AND n.claimed_by IS NULL
  AND ($4::bigint IS NULL OR n.tenant_id = $4)
  AND (n.tenant_id IS NULL OR n.tenant_id <> ALL ($5::bigint[]))
LIMIT 1
"""


def give_back(channel, state, ids, error=None, after=0):
    from datetime import UTC, datetime, timedelta

    plpy.execute(
        plan("give back", GIVE_BACK, ["bigint[]", "text", "timestamptz", "bigint"]),
        [ids, error, datetime.now(UTC) + timedelta(seconds=after), state.run_id],
    )


def record(channel, state, counts):
    """Record what came back from channel's workers: 'sent', 'retried' or 'dead' each."""
    from datetime import UTC, datetime, timedelta

    settings = state.settings
    record_plan = plan(
        "record", RECORD, ["bigint", "text", "timestamptz", "text", "text", "bigint"]
    )
    untried = []
    for note, outcome, detail in channel.finished():
        now = datetime.now(UTC)
        attempts = note["attempts"] + 1
        if outcome == "untried":
            untried.append(note["id"])
            continue
        if outcome == "throttled":
            # the provider's rate, not the message: no attempt spent, and every dispatcher
            # waits as long as it asked
            after = detail.after or 1
            give_back(channel, state, [note["id"]], str(detail), after)
            plpy.execute(
                plan("pause", PAUSE, ["text", "float8", "float8"]),
                [channel.name, after, channel.rate],
            )
            counts["throttled"] = counts.get("throttled", 0) + 1
            continue
        if outcome == "sent":
            channel.proven = True
            row = [note["id"], "sent", now, None, detail]
        elif outcome == "refused":
            row = [note["id"], "dead", now, detail, None]
        elif attempts >= int(settings["dispatch.max_attempts"]):
            row = [note["id"], "dead", now, f"{detail} (attempt {attempts}, the last)", None]
        else:
            when = now + timedelta(seconds=detail.after) if detail.after else backoff(attempts, now)
            row = [note["id"], "failed", when, f"{detail} (attempt {attempts})", None]
        plpy.execute(record_plan, [*row, state.run_id])
        counts[{"sent": "sent", "failed": "retried", "dead": "dead"}[row[1]]] += 1
    if untried:
        give_back(channel, state, untried)

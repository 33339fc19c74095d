"""dispatch-notifications: deliver the outbox by SMTP and by WhatsApp (Cloud-API-shaped HTTP).

A run keeps delivering while messages are due, for at most dispatch.run_seconds, within each
channel's rate (a schedule of send times in gstjobs.send_rates, shared by every dispatcher:
each message goes at its time), with up to smtp.connections SMTP sessions and
whatsapp.connections HTTP requests at once. The sending is done by a process the run starts
(plpy/sender.py: why a process, not threads, is said there); only this backend touches the
database. Each call of the body records the outcomes that came back, claims more messages
(FOR UPDATE SKIP LOCKED, most urgent first, marked claimed_by this run and committed, so that
a claim outlives the runner's commit after every call) and hands them to the sender.

A notification is marked sent only after the server accepted it. The one way a message can go
twice: the server accepted it and the run ended before recording it (a crash); the next run
releases the claims of runs that are over and sends them again, with the same Message-ID. At
most the messages in flight at that moment: 2 x connections per channel.

Failures: SMTP 4xx, connection failures, timeouts and HTTP 5xx are retried after 1 minute,
doubling up to 1 hour, with +-20% jitter; HTTP 429 after its Retry-After, spending no attempt
(the provider's rate, not the message, is at fault) and slowing the channel's window for every
dispatcher; SMTP 5xx and other HTTP 4xx are permanent, and so is a message that cannot be built
from what was stored (an address the email package refuses): each is that message's failure,
never the run's. After dispatch.max_attempts attempts, or on a permanent refusal, the
notification is dead. Settings are read once per run; secrets through gstjobs.secret(), which
only the owner may call, and they appear in no error, log line or ledger row.
"""

# The server compiles plpy/common.py into this module's namespace (cli/gstjobs/resources.py):
# these names come from there. Never run, so nothing is imported in a new session.
if False:
    from common import EMAIL_PART, enter_run, one, plan, sender_python

    SENDER_PROGRAM = ""  # plpy/sender.py's text, put here by the rendering (resources.py)

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
      AND n.next_attempt_at <= $1 + (clock_timestamp() - $2)
      AND n.channel = $3 AND n.claimed_by IS NULL
      AND ($4::bigint IS NULL OR n.tenant_id = $4)
      AND (n.tenant_id IS NULL OR n.tenant_id <> ALL ($5::bigint[]))
    ORDER BY n.urgency, n.next_attempt_at, n.id
    LIMIT $6
    FOR UPDATE OF n SKIP LOCKED
), claimed AS (
    UPDATE gstjobs.notifications AS n SET claimed_by = $7
    FROM due WHERE n.id = due.id
    RETURNING n.id, n.tenant_id, n.member_id, n.kind, n.channel, n.recipient, n.subject,
              n.body, n.template::text AS template, n.dedupe_key, n.attempts, n.urgency,
              n.next_attempt_at
)
SELECT c.*, firm.name AS firm_name, firm.email_from, firm.reply_to, firm.preferences_url,
       member.preferences_token::text AS preferences_token
FROM claimed AS c
LEFT JOIN litigation.tenants AS firm ON firm.id = c.tenant_id
LEFT JOIN litigation.members AS member
       ON member.tenant_id = c.tenant_id AND member.id = c.member_id
ORDER BY c.urgency, c.next_attempt_at, c.id
"""

# the attempts' outcomes that came back, in one statement: sent, failed (with when to try
# again) or dead
RECORD = """
UPDATE gstjobs.notifications AS n
SET status = o.status, attempts = n.attempts + 1, next_attempt_at = o.next_attempt_at,
    last_error = o.last_error, provider_reply = o.provider_reply,
    last_attempt_at = clock_timestamp(),
    sent_at = CASE WHEN o.status = 'sent' THEN clock_timestamp() END, claimed_by = NULL
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])
     AS o (id, status, next_attempt_at, last_error, provider_reply)
WHERE n.id = o.id AND n.claimed_by = $6
"""

# given back unsent, no attempt spent: the channel went down before its turn, or the provider
# asked for a pause (HTTP 429: then $3 is when, and $2 says so)
GIVE_BACK = """
UPDATE gstjobs.notifications
SET claimed_by = NULL, next_attempt_at = greatest(next_attempt_at, $3),
    last_error = coalesce($2, last_error)
WHERE id = ANY ($1::bigint[]) AND claimed_by = $4
"""

# Digests: the items due (channel `digest`, at or before the run's clock) become one email per
# member, grouped by case in the order they came, each item's text without its greeting and
# signature; each item is marked `digested` with its email's id, in this one statement, so an
# item is in exactly one digest whatever crashes (nothing or all of it commits) or overlaps
# (the items are locked in id order: a second run waits, then finds them digested). Asked
# once a run, before its first claim, which then sends the digests. A member's items past
# EMAIL_PART characters go on in another email ("part 2 of 3"): a digest is split, never cut.
ASSEMBLE = f"""
WITH due AS (
    SELECT n.id, n.tenant_id, n.member_id, n.recipient, n.subject, n.urgency,
           n.template -> 'params' ->> 'case_reference' AS case_reference,
           regexp_replace(regexp_replace(n.body, '^Dear [^' || chr(10) || ']*,\\s*', ''),
                          '\\s*' || chr(10) || '[^' || chr(10) || ']*sent by gstjobs\\s*$', '')
           AS text
    FROM gstjobs.notifications AS n
    WHERE n.channel = 'digest' AND n.status = 'pending'
      AND n.next_attempt_at <= $1 + (clock_timestamp() - $2)
      AND ($3::bigint IS NULL OR n.tenant_id = $3)
    ORDER BY n.id
    FOR UPDATE OF n
), placed AS (
    -- the part of the member's digest each item is in: by the length of what comes before it,
    -- in the order the digest lists them (by case, then as they came), as it is indented, with
    -- room for its case's heading
    SELECT due.*, min(id) OVER (PARTITION BY tenant_id, member_id, part) AS part_first
    FROM (SELECT due.*,
                 (sum(length(subject) + length(replace(text, chr(10), chr(10) || '    ')) + 60)
                      OVER (PARTITION BY tenant_id, member_id
                            ORDER BY case_reference NULLS LAST, id) - 1) / {EMAIL_PART} AS part
          FROM due) AS due
), cases AS (
    SELECT tenant_id, member_id, part_first, case_reference, min(id) AS first,
           string_agg('  * ' || subject || chr(10) || '    '
                      || replace(text, chr(10), chr(10) || '    '), chr(10) ORDER BY id) AS items
    FROM placed GROUP BY tenant_id, member_id, part_first, case_reference
), parts AS (
    SELECT tenant_id, member_id, part_first, min(recipient) AS recipient,
           min(urgency) AS urgency, count(*) AS items,
           row_number() OVER (PARTITION BY tenant_id, member_id ORDER BY min(part)) AS part,
           count(*) OVER (PARTITION BY tenant_id, member_id) AS parts
    FROM placed GROUP BY tenant_id, member_id, part_first
), digests AS (
    INSERT INTO gstjobs.notifications
        (tenant_id, kind, channel, recipient, member_id, subject, body, template, urgency,
         dedupe_key, run_id)
    SELECT p.tenant_id, 'digest', 'email', p.recipient, p.member_id,
           format('Your digest: %s notification(s)%s', p.items, numbered.part),
           gstjobs.fit(format('Dear %s,%s%s notification(s) since your last digest%s, by case:%s%s%s%s, sent by gstjobs',
                              m.name, chr(10) || chr(10), p.items, numbered.part, chr(10) || chr(10),
                              (SELECT string_agg(coalesce(c.case_reference, 'The firm') || chr(10)
                                                 || c.items, chr(10) || chr(10)
                                                 ORDER BY c.case_reference NULLS LAST, c.first)
                               FROM cases AS c
                               WHERE c.tenant_id = p.tenant_id AND c.member_id = p.member_id
                                 AND c.part_first = p.part_first),
                              chr(10) || chr(10), firm.name), 20000, false),
           jsonb_build_object('name', 'digest',
                              'params', jsonb_build_object('items', p.items, 'part', p.part,
                                                           'parts', p.parts)),
           p.urgency, format('digest:%s:%s:%s', p.tenant_id, p.member_id, p.part_first), $4
    FROM parts AS p
    CROSS JOIN LATERAL (SELECT CASE WHEN p.parts > 1
                                    THEN format(' (part %s of %s)', p.part, p.parts)
                                    ELSE '' END AS part) AS numbered
    JOIN litigation.members AS m ON m.tenant_id = p.tenant_id AND m.id = p.member_id
    JOIN litigation.tenants AS firm ON firm.id = p.tenant_id
    -- the parts in order: sent in that order (of one urgency, the claim takes the oldest first)
    ORDER BY p.tenant_id, p.member_id, p.part
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, tenant_id, dedupe_key
), digested AS (
    UPDATE gstjobs.notifications AS n
    SET status = 'digested', digest_id = d.id
    FROM placed JOIN digests AS d
      ON d.tenant_id = placed.tenant_id
     AND d.dedupe_key = format('digest:%s:%s:%s', placed.tenant_id, placed.member_id,
                               placed.part_first)
    WHERE n.id = placed.id AND n.tenant_id = placed.tenant_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM digests) AS digests, (SELECT count(*) FROM digested) AS digested
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


def pace_at(recovery, at):
    """A channel's pace at time `at` (SQL): the share of its rate it was cut to at slowed_at by
    the provider's 429s, regaining `recovery` (a parameter) a second since."""
    since = f"coalesce(extract(epoch FROM {at} - slowed_at)::float8, 0)"
    return f"least(1, pace + {recovery}::float8 * {since})"


# the share of its rate a channel's pace regains a second after a 429 (from 0.95: 10 s)
PACE_RECOVERY = 0.005
# the schedule keeps 2% under the rate: 80 a second becomes one every 12.75 ms, so that a send
# a moment late beside one on time does not make a provider's second count one too many
MARGIN = 1.02
# how far ahead a run may take send times: enough for its sender to keep going while the run
# records outcomes and commits (a loop that comes back late loses nothing), and no more than
# a run draining at the tick holds the next one back
HORIZON = 1.0

# Up to $2 send times on channel $1, from the channel's schedule, shared by every dispatcher:
# the first at its next_send_at (or now, if that has passed, or if it is further ahead than
# a take reaches, as after the clock was set back), then one every MARGIN / rate
# seconds ($3 a second, times its pace), none further than HORIZON ($6) ahead. Each message
# goes at its time, whichever run's sender sends it: two runs side by side (a tick's handover)
# keep the one schedule, so no second, the window providers count in, gets more than the
# rate. Row-locked until the call's commit, a moment later; the time is taken once the row
# is locked ($5 replaces it in tests). Answers how many were taken, the first's time and the
# interval (epoch seconds), the schedule's new next_send_at, and, when none, how long until
# the schedule is within reach again.
TAKE = f"""
WITH locked AS (
    SELECT channel, next_send_at, pace, slowed_at FROM gstjobs.send_rates
    WHERE channel = $1
    FOR UPDATE
), clock AS (
    SELECT locked.*, coalesce($5::timestamptz, clock_timestamp()) AS at FROM locked
), spaced AS (
    SELECT channel, extract(epoch FROM at)::float8 AS at,
           -- a schedule further ahead than a take leaves it (the horizon and an interval at
           -- half pace, the slowest) is a clock set back: it starts again from now
           CASE WHEN next_send_at
                     > at + make_interval(secs => $6::float8 + 2 * {MARGIN} / $3::float8)
                THEN extract(epoch FROM at)
                ELSE greatest(extract(epoch FROM next_send_at), extract(epoch FROM at))
           END::float8 AS first_at,
           {MARGIN} / ($3::float8 * {pace_at("$4", "at")}) AS spacing
    FROM clock
), taken AS (
    SELECT spaced.*,
           CASE WHEN first_at > at + $6::float8 THEN 0
                ELSE least($2, floor((at + $6::float8 - first_at) / spacing)::integer + 1)
           END AS taken
    FROM spaced
)
UPDATE gstjobs.send_rates AS r
SET next_send_at = CASE WHEN t.taken > 0
                        THEN to_timestamp(ceil((t.first_at + t.taken * t.spacing) * 1e6) / 1e6)
                        ELSE r.next_send_at END
FROM taken AS t WHERE r.channel = t.channel
RETURNING t.taken, t.first_at, t.spacing, r.next_send_at AS until,
          CASE WHEN t.taken > 0 THEN 0 ELSE t.first_at - $6::float8 - t.at END AS wait_seconds
"""
TAKE_TYPES = ["text", "integer", "float8", "float8", "timestamptz", "float8"]

# Send times taken for messages that were not there, given back: the schedule goes back to
# the first unused one ($3, epoch seconds), unless another dispatcher has taken from it since
# ($2: the next_send_at the take left), when the times stay unused, a moment lost.
REFUND = """
UPDATE gstjobs.send_rates
SET next_send_at = to_timestamp(ceil($3::float8 * 1e6) / 1e6)
WHERE channel = $1 AND next_send_at = $2
"""
REFUND_TYPES = ["text", "timestamptz", "float8"]

# The provider said "too many" (HTTP 429): the channel's pace is cut by 5% (to no less than
# half the rate), at most once a second however many answers said so at once; the send times
# already taken stand (at most a second of them), the next are spaced wider.
PAUSE = f"""
UPDATE gstjobs.send_rates
SET pace = CASE WHEN slowed_at > clock_timestamp() - interval '1 second' THEN pace
                ELSE greatest(0.5, {pace_at("$2", "clock_timestamp()")} * 0.95) END,
    slowed_at = CASE WHEN slowed_at > clock_timestamp() - interval '1 second' THEN slowed_at
                     ELSE clock_timestamp() END
WHERE channel = $1
"""
PAUSE_TYPES = ["text", "float8"]

# a secret is read only while the endpoint is the one it was set for (else NULL)
SETTINGS = """
SELECT d.key, CASE WHEN d.kind = 'secret' THEN gstjobs.secret(d.key)
                   ELSE coalesce(s.value, d.default_value) END AS value
FROM gstjobs.setting_defaults AS d
LEFT JOIN gstjobs.settings AS s ON s.key = d.key
WHERE d.key LIKE 'smtp.%' OR d.key LIKE 'whatsapp.%' OR d.key LIKE 'dispatch.%'
   OR d.key = 'timeout.dispatch-notifications'
"""

# what stands between a channel and delivery (plpy/settings.py), asked once a run, before the
# first message: a secret set for another endpoint, a credential that would go in clear, a
# host that resolves to a link-local address
PROBLEMS = "SELECT email, whatsapp FROM gstjobs.delivery_problems(true)"

# When the run's clock started: for a run of now (as_of is the time its start began), as_of
# itself, so that the run's clock is the time now, to the microsecond, and a message written
# a moment after it started is due; for a replay of a moment past, when the run started. And,
# for a run pg_cron started, the seconds until the next minute's tick, when the next run starts.
STARTED = """
SELECT CASE WHEN started_at - as_of < interval '1 minute' THEN as_of ELSE started_at END
       AS started_at,
       CASE WHEN trigger = 'cron' THEN extract(epoch FROM
            date_trunc('minute', clock_timestamp()) + interval '1 minute' - clock_timestamp())
       END::float8 AS to_next_tick
FROM gstjobs.runs WHERE id = $1
"""
# how long before the next tick a run pg_cron started stops claiming: the next run's guard
# (gstjobs.start_run) must find it draining, or that run is skipped and a minute is lost
BEFORE_THE_TICK = 0.3


def claiming_seconds(settings, to_next_tick):
    """How long a run claims: dispatch.run_seconds, and less if need be for the messages under
    way to end (sent at their times, up to HORIZON ahead, each within its channel's timeout)
    before the run's own timeout would cancel it; a run pg_cron started stops just before the
    next tick (every minute, as shipped: claiming until then, instead of for a fixed 58 s,
    left no second of each minute idle)."""
    seconds = min(
        int(settings["dispatch.run_seconds"]),
        int(settings["timeout.dispatch-notifications"])
        - max(int(settings["smtp.timeout_seconds"]), int(settings["whatsapp.timeout_seconds"]))
        - HORIZON
        - 2,
    )
    if to_next_tick is not None and to_next_tick - BEFORE_THE_TICK >= 1:
        seconds = min(seconds, to_next_tick - BEFORE_THE_TICK)
    return max(1, seconds)


DUE = """
SELECT channel, count(*) AS due FROM gstjobs.notifications
WHERE status IN ('pending', 'failed') AND next_attempt_at <= $1
  AND ($2::bigint IS NULL OR tenant_id = $2)
GROUP BY channel
"""

CHANNELS = ("email", "whatsapp")


def backoff(attempts, now):
    """When to try again after the attempts-th failure: 1 min doubling to 1 h, +-20%."""
    import random
    from datetime import timedelta

    delay = min(60 * 2 ** (attempts - 1), 3600)
    return now + timedelta(seconds=delay * random.uniform(0.8, 1.2))


def configured(channel, settings):
    """A channel without a server to send to is left alone: its messages wait, no attempt spent."""
    return bool(settings["smtp.host"] if channel == "email" else settings["whatsapp.url"])


class Channel:
    """What a run has handed to the sender on one channel, and how much more it may."""

    def __init__(self, name, settings):
        prefix = "smtp" if name == "email" else "whatsapp"
        self.name = name
        self.width = int(settings[f"{prefix}.connections"])
        self.rate = float(settings[f"{prefix}.rate_per_second"])
        self.in_flight = {}  # notification id: the notification, as claimed
        self.down = False  # the sender found the server gone, or the session refused
        self.proven = False  # a message went through in this run: every connection may open
        self.stopped = None  # why this run may not send on the channel
        self.ready_at = 0.0  # time.monotonic() when the window grants again, while it is full

    def halted(self):
        """This run sends no more on the channel (a problem, the server gone, the sender dead)."""
        return bool(self.stopped or self.down)

    def room(self):
        """How many more may be handed out now: one until the server has accepted a message
        in this run (a dead server costs one attempt, not one per connection), then two per
        connection (each has the next message ready as it finishes one)."""
        if self.halted():
            return 0
        return (2 * self.width if self.proven else 1) - len(self.in_flight)


class Sender:
    """The sender program (plpy/sender.py) for one run, started when there is something to
    send: notifications go down its stdin, outcomes come back on its stdout."""

    def __init__(self, settings):
        import subprocess
        import tempfile

        # the server's own Python, isolated from the environment and the user's site packages
        # (without one, a channel problem stops the run before anything is handed out)
        python, missing = sender_python()
        if python is None:
            raise RuntimeError(missing)
        # its stderr goes to a file (unlinked), not a pipe: nobody reads it while the sender
        # runs, and a pipe that filled would stop the sender in the middle of a write
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the sender: close)
        self.process = subprocess.Popen(
            [python, "-I", "-c", SENDER_PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            close_fds=True,
        )
        self.pending = b""
        self.ended = False
        self.gone = False  # its input is closed: it was killed or crashed
        self.write({"settings": settings})

    def write(self, message):
        """False when the sender is gone (killed, crashed): nothing was handed over."""
        import json

        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self.gone = True
            return False
        return True

    def outcomes(self, seconds):
        """The outcomes the sender reports in the next `seconds` (all of them: a call of the
        body costs a commit and a few statements, so each records what came in that time,
        not one outcome each)."""
        import json
        import os
        import select
        import time

        out = self.process.stdout.fileno()
        data = b""
        deadline = time.monotonic() + seconds
        while not self.ended:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                break
            chunk = os.read(out, 1 << 16)
            if not chunk:
                self.ended = True
            data += chunk
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        return [json.loads(line) for line in lines if line]

    def why_ended(self):
        """Why the sender ended before the run did: its exit status, and the end of what it
        wrote to stderr (a traceback ends with the error)."""
        import contextlib
        import os
        import subprocess

        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)  # its output ended: the exit follows
        self.errors.seek(max(0, self.errors.seek(0, os.SEEK_END) - 300))
        error = self.errors.read().decode(errors="replace").strip()
        return f"the sender ended (exit {self.process.returncode}): {error or 'no message'}"

    def close(self):
        """No more messages: the sender finishes what it has and ends."""
        import contextlib

        with contextlib.suppress(OSError):
            self.process.stdin.close()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=5)
        self.process.stdout.close()
        self.errors.close()


class Run:
    """What a run has under way, kept in SD between the body's calls (one session)."""

    def __init__(self, run_id, as_of):
        import time

        self.run_id = run_id
        self.as_of = as_of
        self.started = time.monotonic()
        self.settings = {r["key"]: r["value"] for r in plpy.execute(plan("settings", SETTINGS, []))}
        started = one("started", STARTED, ["bigint"], [run_id])
        self.started_at = started["started_at"]
        self.seconds = claiming_seconds(self.settings, started["to_next_tick"])
        self.channels = {name: Channel(name, self.settings) for name in CHANNELS}
        self.sender = None
        self.lingering = False  # waiting for a job at work to write notifications
        self.firms = {}
        self.problems = None
        self.assembled = False  # the digests due were made (once a run, first)
        self.died = None  # why the sender ended before the run did (killed, crashed)

    def elapsed(self):
        import time

        return time.monotonic() - self.started

    def over(self):
        """Past its time: claims nothing more, so that it ends before the next tick."""
        return self.elapsed() >= self.seconds

    def in_flight(self):
        return sum(len(c.in_flight) for c in self.channels.values())

    def hand_out(self, notes):
        if self.sender is None:
            self.sender = Sender(self.settings)
        for number, note in enumerate(notes):
            channel = self.channels[note["channel"]]
            if not self.sender.write(dict(note)):
                # these were never handed over: back, untried; outcomes() says why from the
                # end of the sender's output
                give_back(channel, self, [n["id"] for n in notes[number:]])
                return
            channel.in_flight[note["id"]] = note

    def outcomes(self):
        """What came back: (channel, notification, outcome) each. Waits up to TICK while
        messages are under way, or, with none, until a channel held back by its rate may send
        again."""
        import time

        if not self.in_flight() and not (self.sender and self.sender.gone):
            ready = [c.ready_at for c in self.channels.values() if c.ready_at]
            if ready:
                time.sleep(min(max(min(ready) - time.monotonic(), 0), TICK * 10))
            elif self.lingering:
                time.sleep(TICK * 5)
            return []
        found = []
        for outcome in self.sender.outcomes(TICK):
            for channel in self.channels.values():
                note = channel.in_flight.pop(outcome["id"], None)
                if note is not None:
                    found.append((channel, note, outcome))
        if self.sender.ended:
            # every message it had is unaccounted for: tried, perhaps sent; tried again later
            reason = self.died = self.sender.why_ended()
            for channel in self.channels.values():
                for note in channel.in_flight.values():
                    found.append((channel, note, {"outcome": "retry", "detail": reason}))
                channel.in_flight.clear()
                channel.stopped = reason
        return found

    def close(self):
        if self.sender is not None:
            self.sender.close()
            self.sender = None


# how long one call of the body waits for outcomes before recording them and committing
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
        record(state, counts)
        if not state.assembled:
            state.assembled = True
            made = plpy.execute(
                plan("assemble", ASSEMBLE, ["timestamptz", "timestamptz", "bigint", "bigint"]),
                [state.as_of, state.started_at, tenant_id, run_id],
            )[0]
            if made["digests"]:
                counts.update(made)
        more = claim_all(state, tenant_id, counts)
        if not more and not state.over():
            # Nothing to send now, but a job that writes notifications may be at work, or
            # pg_cron starting one at this tick (at 09:00, deadline-alerts and this run start
            # together): wait for what it writes, and send it now rather than a minute later.
            state.lingering = writers_at_work(state)
            # a writer that finished just before that look committed first: one more look
            more = state.lingering or claim_all(state, tenant_id, counts)
    except BaseException:
        # the sender finishes what it has and ends; those outcomes go unrecorded, and the
        # next run sends the messages again (same Message-ID), as after a crash
        state.close()
        SD.pop("run", None)
        raise
    if not more:
        state.close()
        SD.pop("run", None)
    elif state.over():
        # past its claiming time, it only finishes the messages under way: the next tick's run
        # may begin beside it (gstjobs.start_run's guard), so no minute is lost to a slow reply
        counts["draining"] = True
    counts["more"] = more
    return counts


def claim_all(state, tenant_id, counts):
    """Claim on every channel; True while the run has more to do (messages under way, or due
    and held back by the rate)."""
    held_back = False
    if not state.over():
        for channel in state.channels.values():
            held_back = claim(channel, state, tenant_id, counts) or held_back
    return held_back or state.in_flight() > 0


# The jobs that write notifications: a run of one under way (the ledger), or one pg_cron has
# just started, whose run is not in the ledger yet (its row in cron.job_run_details, written as
# pg_cron starts the jobs of a tick, before any connects; newest first by pg_cron's key).
# pg_cron's own status is not enough: it may mark a job's row done only when the tick's other
# jobs, this run included, are done.
WRITERS = """
SELECT EXISTS (
           SELECT FROM gstjobs.runs AS r
           WHERE r.status = 'running' AND NOT r.dry_run AND r.job = ANY ($1::text[]))
       OR EXISTS (
           SELECT FROM (SELECT d.runid, d.jobid, d.status, d.start_time
                        FROM cron.job_run_details AS d ORDER BY d.runid DESC LIMIT 100) AS d
           JOIN cron.job AS c ON c.jobid = d.jobid
           WHERE d.status IN ('starting', 'running') AND c.username = 'gstjobs_runner'
             AND c.jobname = ANY ($1::text[])
             AND d.start_time > clock_timestamp() - interval '10 seconds'
             AND NOT EXISTS (SELECT FROM gstjobs.runs AS r WHERE r.cron_runid = d.runid))
           AS at_work
"""
WRITING_JOBS = ["sla-check", "hearing-reminders", "deadline-alerts", "health-check"]


def writers_at_work(state):
    # waiting is for sending what a writer writes: pointless when no channel may send
    if not any(
        configured(c.name, state.settings) and not c.halted() for c in state.channels.values()
    ):
        return False
    return plpy.execute(plan("writers", WRITERS, ["text[]"]), [WRITING_JOBS])[0]["at_work"]


def claim(channel, state, tenant_id, counts):
    """Hand the sender what is due on channel, as far as room and rate allow. True when due
    work is held back by the rate (the run waits for the window to grant again)."""
    import time

    room = channel.room()
    if room <= 0 or not configured(channel.name, state.settings):
        return False
    per_firm = int(state.settings["dispatch.per_firm_limit"])
    full_firms = [f for f, n in state.firms.items() if per_firm and n >= per_firm]
    # due by the run's clock: as_of, moved on by the time since the run started (a message
    # that falls due while the run works, a new one or a retry, is sent by it; for a run of
    # now, that is the time now)
    arguments = [state.as_of, state.started_at, channel.name, tenant_id, full_firms]
    if not plpy.execute(plan("anything due", ANY_DUE, DUE_TYPES), arguments).nrows():
        return False  # most minutes: nothing is taken from the schedule, nothing is written
    taken = plpy.execute(
        plan("take", TAKE, TAKE_TYPES),
        [channel.name, room, channel.rate, PACE_RECOVERY, None, HORIZON],
    )[0]
    if not taken["taken"]:
        channel.ready_at = time.monotonic() + taken["wait_seconds"]
        # held back, unless no send time comes before the run's time is up (a long pause)
        return state.elapsed() + taken["wait_seconds"] < state.seconds
    channel.ready_at = 0.0
    notes = list(
        plpy.execute(
            plan("claim", CLAIM, CLAIM_TYPES),
            [*arguments, taken["taken"], state.run_id],
        )
    )
    first, spacing = taken["first_at"], taken["spacing"]
    if len(notes) < taken["taken"]:
        plpy.execute(
            plan("refund", REFUND, REFUND_TYPES),
            [channel.name, taken["until"], first + len(notes) * spacing],
        )
    if not notes:
        return False
    for number, note in enumerate(notes):
        note["send_at"] = first + number * spacing
        note["spacing"] = spacing
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
    state.hand_out(notes)
    return False


DUE_TYPES = ["timestamptz", "timestamptz", "text", "bigint", "bigint[]"]
CLAIM_TYPES = [*DUE_TYPES, "integer", "bigint"]

ANY_DUE = """
SELECT FROM gstjobs.notifications AS n
WHERE n.status IN ('pending', 'failed')
  AND n.next_attempt_at <= $1 + (clock_timestamp() - $2)
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


def record(state, counts):
    """Record what came back from the sender: 'sent', 'retried' or 'dead' each; a message
    not tried, or refused for the provider's rate, is given back with no attempt spent."""
    from datetime import UTC, datetime, timedelta

    max_attempts = int(state.settings["dispatch.max_attempts"])
    rows = []
    for channel, note, outcome in state.outcomes():
        now = datetime.now(UTC)
        attempts = note["attempts"] + 1
        kind, detail = outcome["outcome"], outcome.get("detail")
        if outcome.get("down"):
            channel.down = True  # the run sends no more on it: the rest wait, untried
        if kind == "untried":
            give_back(channel, state, [note["id"]])
            continue
        if kind == "throttled":
            # the provider's rate, not the message: no attempt spent, the message waits as
            # long as it asked, and the channel slows down for every dispatcher
            give_back(channel, state, [note["id"]], detail, outcome.get("after") or 1)
            plpy.execute(plan("pause", PAUSE, PAUSE_TYPES), [channel.name, PACE_RECOVERY])
            counts["throttled"] = counts.get("throttled", 0) + 1
            continue
        if kind == "sent":
            channel.proven = True
            rows.append((note["id"], "sent", now, None, detail))
        elif kind == "refused":
            rows.append((note["id"], "dead", now, detail, None))
        elif attempts >= max_attempts:
            rows.append((note["id"], "dead", now, f"{detail} (attempt {attempts}, the last)", None))
        else:
            after = outcome.get("after")
            when = now + timedelta(seconds=after) if after else backoff(attempts, now)
            rows.append((note["id"], "failed", when, f"{detail} (attempt {attempts})", None))
        counts[{"sent": "sent", "failed": "retried", "dead": "dead"}[rows[-1][1]]] += 1
    if state.died:
        # the run fails with why, so that it shows (gstjobs history, GstjobsRunsFailing)
        counts["error"] = state.died
    if rows:
        record_plan = plan(
            "record", RECORD, ["bigint[]", "text[]", "timestamptz[]", "text[]", "text[]", "bigint"]
        )
        plpy.execute(
            record_plan, [*(list(column) for column in zip(*rows, strict=True)), state.run_id]
        )

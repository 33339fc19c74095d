"""The sender: the program dispatch-notifications starts for a run that has messages to send
(`python3 -I -c <this file>`, as the database server's user), which sends them by SMTP and by
WhatsApp (Cloud-API-shaped HTTP) with several connections at once, one thread each.

Why a process of its own: threads inside a PostgreSQL backend outlive what the backend can
control. A backend that is terminated while one of them is under way (pg_terminate_backend,
a fast shutdown) exits under it, and that crashed the server process in tests: the postmaster
then restarts every session of every firm. Here, the backend's only link to the sender is a
pair of pipes; when the backend goes, the sender finishes the messages under way and ends.

Protocol, one JSON object a line. In (stdin): {"settings": {...}} first (secrets included:
never on a command line or in the environment, which other processes can read), then one
notification a line, with its send_at: the time it may go (epoch seconds), and its spacing:
the schedule's interval, one send every so many seconds. Out (stdout): one line a
notification, in the order they finish: {"id", "outcome", "detail", "after", "down"}, outcome
one of sent (detail: the server's answer), refused (permanent), retry, throttled
(HTTP 429; after: its Retry-After), untried (the channel went down before its turn). Ends
when stdin ends, after the messages under way (those handed over and not started are
dropped: the run that handed them over is gone).
Only the standard library: the database server's Python needs nothing installed.
"""

CHANNELS = ("email", "whatsapp")


def main():
    import json
    import signal
    import sys
    import threading

    # a cancel request reaches the backend's whole process group: the backend decides
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = json.loads(sys.stdin.readline())["settings"]
    lock = threading.Lock()

    def report(result):
        with lock:
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()

    channels = {name: Senders(name, settings, report) for name in CHANNELS}
    for line in sys.stdin:
        note = json.loads(line)
        channels[note["channel"]].submit(note)
    for channel in channels.values():
        channel.close()


# the longest a message waits for its time: a run takes times at most a second ahead, so a
# longer wait means the clock was set back, which must not hold messages for as long
LONGEST_WAIT = 2.0


def wait_until(send_at):
    """Wait for a message's time (epoch seconds, the database server's clock, which is this
    process's): the channel's schedule, shared by every run's sender, spaces the sends a rate's
    interval apart, whichever run sends them. A message whose time has passed does not wait
    here; the channel's Window decides when it goes."""
    import time

    delay = send_at - time.time()
    if delay > 0:
        time.sleep(min(delay, LONGEST_WAIT))


class Window:
    """One channel's recent sends, counted as a provider counts requests, in a second: as many
    as the schedule puts in a second (79 at 80 a second) go in no less time than the schedule
    takes for them (79 intervals of 12.75 ms: 1.007 s, a few ms over the second, for a request
    that reaches the provider a moment later than the one before it). On time, the schedule
    keeps within that and nothing waits here. After a stall (this process, or the machine,
    held up for a moment), every message whose time passed would go at once, and the provider
    would answer the ones over its rate with 429 (docs/BENCHMARKS.md, 2026-12-02 18:13): they
    go as the window allows instead, as early as it does."""

    def __init__(self):
        import collections
        import threading

        self.lock = threading.Lock()
        self.sent = collections.deque()  # time.monotonic() of each send in the window

    def enter(self, spacing):
        """Returns when a message of a schedule of one send every `spacing` seconds may go."""
        import math
        import time

        # a schedule of one every s seconds puts at most ceil(1 / s) in a second
        most = max(1, math.ceil(1 / spacing - 1e-9))
        span = most * spacing
        # one thread waits for room at a time, the others behind it
        with self.lock:
            while True:
                now = time.monotonic()
                while self.sent and self.sent[0] <= now - span:
                    self.sent.popleft()
                if len(self.sent) < most:
                    self.sent.append(now)
                    return
                time.sleep(self.sent[0] + span - now)


SENDING_IMPORTS = {
    "email": ("email.message", "email.policy", "email.utils", "smtplib", "ssl"),
    "whatsapp": ("json", "urllib.error", "urllib.request"),
}


class Senders:
    """One channel's connections, a thread each; a message is handed to the first free one."""

    def __init__(self, name, settings, report):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.name = name
        self.settings = settings
        self.report = report
        width = int(settings["smtp.connections" if name == "email" else "whatsapp.connections"])
        self.pool = ThreadPoolExecutor(width, thread_name_prefix=name)
        self.local = threading.local()
        self.mailers = []
        self.lock = threading.Lock()
        self.down = False  # the server is gone or refuses the session: no more tries
        self.window = Window()
        # what sending imports, imported now: between the window and the server, the first
        # requests' imports (30 ms and more, each thread waiting on the others) would hold
        # them back, and the provider would count them in the next second with the ones after
        import importlib

        for module in SENDING_IMPORTS[name]:
            importlib.import_module(module)

    def submit(self, note):
        self.pool.submit(self.send, note)

    def send(self, note):
        if not self.down:
            wait_until(note["send_at"])
            self.window.enter(note["spacing"])
        outcome, detail, after = self.attempt(note)
        self.report(
            {
                "id": note["id"],
                "outcome": outcome,
                "detail": detail,
                "after": after,
                "down": self.down,
            }
        )

    def attempt(self, note):
        """(outcome, detail, after) of sending note. Never raises: every message is answered."""
        from datetime import UTC, datetime

        if self.down:
            return "untried", None, None
        try:
            if self.name == "email":
                reply = self.mailer().send(build_email(note, self.settings, datetime.now(UTC)))
            else:
                reply = send_whatsapp(note, self.settings)
        except Refused as refusal:
            return "refused", str(refusal), None
        except Retry as failure:
            if failure.channel_down:
                self.down = True
            return ("throttled" if failure.throttled else "retry"), str(failure), failure.after
        except Exception as error:  # a message whose failure nobody foresaw: tried again later
            return "retry", f"{type(error).__name__}: {error}", None
        return "sent", reply, None

    def mailer(self):
        mailer = getattr(self.local, "mailer", None)
        if mailer is None:
            mailer = self.local.mailer = Mailer(self.settings)
            with self.lock:
                self.mailers.append(mailer)
        return mailer

    def close(self):
        # the input ended: the run has nothing more under way, or its backend is gone; a
        # message not started yet is not sent (the next run sends it), one under way finishes
        self.pool.shutdown(wait=True, cancel_futures=True)
        for mailer in self.mailers:
            mailer.close()


class Retry(Exception):
    """A failure worth another attempt; after seconds, if the server said when."""

    def __init__(self, message, after=None, channel_down=False, throttled=False):
        super().__init__(message)
        self.after = after
        self.channel_down = channel_down
        self.throttled = throttled  # HTTP 429: the provider's rate, not this message


class Refused(Exception):
    """A permanent refusal: no attempt will do better."""


def request_id(dedupe_key):
    import hashlib

    return hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]


def message_id(dedupe_key, sender):
    domain = sender.rsplit("@", 1)[-1] or "gstjobs"
    return f"<{request_id(dedupe_key)}@{domain}>"


def build_email(note, settings, now):
    """The message, or Refused when what was stored cannot make one."""
    try:
        email = compose_email(note, settings, now)
        # what the server will be sent, made once, here, where a failure is caught
        email.data = email.as_bytes()
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
    from email.policy import SMTP
    from email.utils import format_datetime

    sender = note["email_from"] or settings["smtp.from"]
    # Lines end in CRLF: smtplib sends bytes as they are, and a server counts lines by CRLF
    # (with bare LFs, a message over 1,000 bytes was one line too long: refused). Lines up to
    # RFC 5322's 998: folded at 78, a long List-Unsubscribe address would be encoded (RFC
    # 2047) and no mail client would find it; a longer body line is quoted-printable.
    email = EmailMessage(policy=SMTP.clone(max_line_length=998))
    email["From"] = sender
    email["To"] = note["recipient"]
    reply_to = note["reply_to"] or settings["smtp.reply_to"]
    if reply_to:
        email["Reply-To"] = reply_to
    email["Subject"] = one_line(note["subject"])
    email["Date"] = format_datetime(now)
    # the same notification always has the same Message-ID: a copy can be recognised
    email["Message-ID"] = message_id(note["dedupe_key"], sender)
    body = note["body"]
    if note.get("member_id") is not None:
        link = preferences_link(note)
        if link:
            # RFC 8058: a mail client's "unsubscribe" button POSTs to the firm's page
            email["List-Unsubscribe"] = f"<{link}>"
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        body += footer(note, link)
    email.set_content(body, charset="utf-8")
    return email


def preferences_link(note):
    """The firm's preferences page for this member and kind ({member}, {kind}, {token} filled
    in, each quoted for a URL), or None when the firm gave none."""
    from urllib.parse import quote

    url = note.get("preferences_url")
    if not url:
        return None
    values = {
        "member": note["member_id"],
        "kind": note["kind"],
        "token": note.get("preferences_token") or "",
    }
    for name, value in values.items():
        url = url.replace("{" + name + "}", quote(str(value), safe=""))
    return url


def footer(note, link):
    """What every email to a member ends with: why they receive it, and where to change it."""
    firm = one_line(note.get("firm_name") or "your firm")
    where = (
        f"choose what you receive, and how: {link}"
        if link
        else "change what you receive, ask your firm's administrator"
    )
    return f"\n\n-- \nYou receive this as a member of {firm}. To {where}"


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
            context = None
            if s["smtp.tls"] != "none":
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
            code, reply = smtp.data(email.data)
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


# WhatsApp refuses a template parameter holding a line break, a tab or more than four spaces in
# a row (error 132018), and a template's body is at most 1,024 characters with its parameters:
# each value goes on one line with its spaces collapsed, the longest cut first so that all of
# them fit PARAMETERS_CHARS, none over PARAMETER_CHARS (the email carries the whole text).
PARAMETER_CHARS = 100
PARAMETERS_CHARS = 600


def template_parameters(params):
    """The template's parameters as WhatsApp takes them, by name, in name order. An empty one
    (an on-time slot's `late`, a deadline without a basis) is "-": WhatsApp refuses a template
    message with an empty parameter (Twilio's error 63013 lists it among the channel's
    policy violations)."""
    texts = {
        key: " ".join(("" if value is None else str(value)).split()) or "-"
        for key, value in params.items()
    }
    room = PARAMETERS_CHARS
    fitted = {}
    # the shortest first: each takes what it needs, up to an even share of what is left
    for left, key in enumerate(sorted(texts, key=lambda k: (len(texts[k]), k))):
        text = texts[key]
        most = min(PARAMETER_CHARS, room // (len(texts) - left))
        if len(text) > most:
            text = text[: max(most - 1, 0)].rstrip() + "…"
        fitted[key] = text
        room -= len(text)
    return [{"type": "text", "parameter_name": key, "text": fitted[key]} for key in sorted(fitted)]


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
                    "parameters": template_parameters(template.get("params", {})),
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
            # the same notification always has the same id, as an email its Message-ID: a
            # copy can be recognised, in the provider's logs or by a proxy in front of it
            "X-Request-Id": request_id(note["dedupe_key"]),
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


if __name__ == "__main__":
    main()

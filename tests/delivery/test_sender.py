"""The sender program (plpy/sender.py) on its own, as a dispatch run starts it: settings and
notifications down its stdin, outcomes up its stdout, to a loopback WhatsApp-shaped server
that answers in 0.2 s, as the Cloud API does."""

import json
import subprocess
import sys
import time
from typing import Any

from gstjobs.resources import load_plpy_module, plpy_source

from tests.delivery.conftest import WhatsAppApi
from tests.delivery.test_dispatch import most_in_a_second

RATE = 20
SPACING = 1.02 / RATE  # the schedule's interval at this rate (plpy/dispatch.py, MARGIN)


def send(whatsapp: type[WhatsAppApi], send_at: list[float]) -> list[dict[str, Any]]:
    """The outcomes of one WhatsApp message for each send time, through the sender program
    with eight connections; its input is closed once every message has been answered."""
    settings = {
        "smtp.connections": "1",
        "whatsapp.connections": "8",
        "whatsapp.url": whatsapp.url,
        "whatsapp.token": "token",
        "whatsapp.timeout_seconds": "10",
    }
    notes = [
        {
            "id": number,
            "channel": "whatsapp",
            "kind": "hearing-reminder",
            "recipient": "+919800000000",
            "template": json.dumps({"name": "hearing_reminder", "params": {"case": "A-1"}}),
            "dedupe_key": f"sender-test:{number}",
            "send_at": at,
            "spacing": SPACING,
        }
        for number, at in enumerate(send_at)
    ]
    with subprocess.Popen(
        [sys.executable, "-I", "-c", plpy_source("sender")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as sender:
        assert sender.stdin and sender.stdout
        sender.stdin.write(
            "".join(json.dumps(line) + "\n" for line in [{"settings": settings}, *notes])
        )
        sender.stdin.flush()
        outcomes = [json.loads(sender.stdout.readline()) for _ in notes]
        sender.stdin.close()
        assert sender.wait(10) == 0
    return outcomes


def test_after_a_stall_the_messages_whose_time_passed_go_as_the_second_allows(
    whatsapp: type[WhatsAppApi],
) -> None:
    """The sender held up for three seconds (a busy machine): sixty messages' times have passed
    when it comes to them. Sent at once, eight connections put 38 a second on a
    provider allowing 20, which answers the rest with 429; they go as the last second allows
    instead: never more than the schedule's 20 in a second (one more where a request reaches
    the server a moment late beside the next), none lost."""
    whatsapp.delay = 0.2
    now = time.time()
    outcomes = send(whatsapp, [now - 3 + number * SPACING for number in range(60)])
    assert sorted(o["id"] for o in outcomes) == list(range(60))
    assert {o["outcome"] for o in outcomes} == {"sent"}
    arrived = [request["at"] for request in whatsapp.requests]
    assert len(arrived) == 60
    assert most_in_a_second(arrived) <= RATE + 1


def test_on_time_the_window_holds_nothing_back(whatsapp: type[WhatsAppApi]) -> None:
    """Messages whose times are still to come go at their times, a schedule's interval apart:
    the window never delays a sender that keeps its schedule (two seconds of it here)."""
    whatsapp.delay = 0.2
    start = time.time() + 0.5
    send(whatsapp, [start + number * SPACING for number in range(40)])
    arrived = sorted(request["at"] for request in whatsapp.requests)
    # the last of 40 goes 39 intervals after the first: 1.99 s, a little later on a busy
    # machine, never much (each late send would push every later one on)
    assert 39 * SPACING - 0.05 <= arrived[-1] - arrived[0] <= 39 * SPACING + 0.25


def test_a_sender_that_writes_much_to_stderr_ends_and_its_last_words_are_kept() -> None:
    """The run starts the sender (plpy/dispatch.py, Sender) and reads its stderr only once it
    has ended. A sender that writes more there than a pipe holds (64 KiB) must not stop in the
    middle of a write, and the run must say what it wrote last: a traceback's last line is its
    error. Here a stand-in program: 300 KB of noise, then its last words, then exit 3."""
    dispatch = load_plpy_module("dispatch")
    dispatch.SENDER_PROGRAM = (
        "import sys\n"
        "sys.stdin.readline()\n"
        "sys.stderr.write('noise\\n' * 50000)\n"
        "sys.stderr.write('RuntimeError: the last words\\n')\n"
        "sys.exit(3)\n"
    )
    sender = dispatch.Sender({"smtp.connections": "1"})
    try:
        assert sender.process.wait(timeout=10) == 3
        assert sender.outcomes(1) == [] and sender.ended
        why = sender.why_ended()
        assert why.startswith("the sender ended (exit 3): ")
        assert why.endswith("noise\nRuntimeError: the last words"), why
        assert len(why) < 400
    finally:
        sender.close()


def test_a_message_for_a_sender_that_is_gone_is_not_handed_over() -> None:
    """The sender killed while the run hands it the next message: the write finds its input
    closed. It must not raise (the run would fail with "BrokenPipeError", its messages left
    claimed, as a CI run showed): the run gives the message back untried and learns why the
    sender ended from the end of its output."""
    dispatch = load_plpy_module("dispatch")
    dispatch.SENDER_PROGRAM = "import sys; sys.exit(0)"  # ends at once, its input unread
    sender = dispatch.Sender({"smtp.connections": "1"})
    try:
        assert sender.process.wait(timeout=10) == 0
        assert sender.write({"id": 1, "channel": "email"}) is False
        assert sender.gone
    finally:
        sender.close()

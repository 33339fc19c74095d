"""What a setting's value may be (plpy/settings.py), without a server: the same rules the
trigger on gstjobs.settings applies to every value stored (tests/security proves that)."""

import types
from typing import Any

import pytest
from gstjobs.resources import load_plpy_module


@pytest.fixture(scope="module")
def rules() -> types.ModuleType:
    return load_plpy_module("settings")


GOOD = [
    ("integer", "1", 1, 300),
    ("integer", "300", 1, 300),
    ("tls", "starttls", None, None),
    ("host", "smtp.example.in", None, None),
    ("host", "127.0.0.1", None, None),
    ("host", "::1", None, None),
    ("host", "", None, None),
    ("url", "https://graph.facebook.com/v19.0/1234567890", None, None),
    ("url", "http://127.0.0.1:8080/v19.0/1", None, None),
    ("url", "http://localhost/v19.0/1", None, None),
    ("url", "", None, None),
    ("email", "alerts@mehta.example.in", None, None),
    ("email", "gstjobs@localhost", None, None),
    ("email", "first.last+gst@firm-name.co.in", None, None),
    ("emails", "ops@firm.in, partner@firm.in", None, None),
    ("emails", "", None, None),
    ("text", "alerts", None, None),
    ("secret", "app-password-123 with spaces", None, None),
    ("directory", "/etc/gstjobs/ca", None, None),
    ("path", "/etc/gstjobs/ca/relay.pem", None, None),
    ("path", "", None, None),
]

BAD = [
    ("integer", "999999999", 1, 300, "from 1 to 300"),
    ("integer", "0", 1, 300, "from 1 to 300"),
    ("integer", "2.5", 1, 100, "whole number"),
    ("integer", "٣", 1, 100, "whole number"),  # an Arabic-Indic digit
    ("tls", "ssl", None, None, "none, starttls or tls"),
    ("host", "169.254.169.254", None, None, "link-local"),
    ("host", "fe80::1", None, None, "link-local"),
    ("host", "::ffff:169.254.169.254", None, None, "link-local"),
    ("host", "0.0.0.0", None, None, "unspecified"),
    ("host", "metadata.google.internal", None, None, "metadata"),
    ("host", "mail.example.in\r\nX", None, None, "control character"),
    ("host", "mail example", None, None, "host name"),
    ("host", "[::1]", None, None, "host name"),
    ("url", "http://169.254.169.254/latest/meta-data", None, None, "link-local"),
    ("url", "https://[fe80::1]/x", None, None, "link-local"),
    ("url", "https://metadata.google.internal/computeMetadata", None, None, "metadata"),
    ("url", "http://api.example.in/v19.0/1", None, None, "https://"),
    ("url", "https://user:pass@graph.facebook.com/v19.0/1", None, None, "user name"),
    ("url", "https://graph.facebook.com/v19.0/1?x=1", None, None, "no query"),
    ("url", "file:///etc/passwd", None, None, "https:// URL"),
    ("url", "javascript:alert(1)", None, None, "https:// URL"),
    ("url", "https://graph.facebook.com:99999/", None, None, "https:// URL"),
    ("email", "a@[b", None, None, "not an email address"),
    ("email", "x@[y.z", None, None, "not an email address"),
    ("email", "a\x1cb@c.in", None, None, "control character"),
    ("email", "a\x85b@c.in", None, None, "control character"),
    ("email", "a\u00a0b@c.in", None, None, "control character"),
    ("email", "a@b.in\r\nBcc: spy@evil.example", None, None, "control character"),
    ("email", "Name <a@b.in>", None, None, "not an email address"),
    ("email", "a@b.in, c@d.in", None, None, "not an email address"),
    ("emails", "ops@firm.in, not-an-address", None, None, "not an email address"),
    ("text", "alerts\r\nRCPT TO:<x@y>", None, None, "control character"),
    ("text", "ünïcode", None, None, "ASCII"),
    ("secret", "token\r\nX-Injected: 1", None, None, "no line break"),
    ("secret", "", None, None, "1 to 2000"),
    ("directory", "/", None, None, "other than /"),
    ("directory", "etc/gstjobs", None, None, "absolute"),
    ("path", "/etc/shadow", None, None, "a file in /etc/gstjobs/ca"),
    ("path", "/etc/gstjobs/ca/../../shadow", None, None, "no . or .."),
    ("path", "/etc/gstjobs/cafe/x.pem", None, None, "a file in /etc/gstjobs/ca"),
]


@pytest.mark.parametrize(("kind", "value", "minimum", "maximum"), GOOD)
def test_good_values_pass(rules: Any, kind: str, value: str, minimum: Any, maximum: Any) -> None:
    assert rules.value_problem(kind, value, minimum, maximum, "/etc/gstjobs/ca") is None


@pytest.mark.parametrize(("kind", "value", "minimum", "maximum", "problem"), BAD)
def test_bad_values_are_refused_saying_why(
    rules: Any, kind: str, value: str, minimum: Any, maximum: Any, problem: str
) -> None:
    found = rules.value_problem(kind, value, minimum, maximum, "/etc/gstjobs/ca")
    assert found is not None and problem in found, found


def test_an_accepted_address_is_one_the_email_package_builds_a_message_for(rules: Any) -> None:
    """Every address the rule accepts goes into From and To of a message that renders, as
    dispatch builds it; every one it refuses above is one the package fails on or changes."""
    from email.message import EmailMessage

    for kind, value, *_ in GOOD:
        if kind == "email":
            message = EmailMessage()
            message["From"] = message["To"] = value
            message.set_content("x")
            assert value.encode() in message.as_bytes()


def test_a_name_that_resolves_to_a_link_local_address_is_not_contacted(
    rules: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        address = {"rebound.example.in": "169.254.169.254", "api.example.in": "203.0.113.7"}
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert "169.254.169.254 is a link-local" in rules.resolved_problem("rebound.example.in", 443)
    assert rules.resolved_problem("api.example.in", 443) is None

"""The dashboard sends a browser back only to one of its own pages (an open redirect is how a
phishing link borrows a trusted address)."""

import pytest
from gstjobs.dashboard import own_page


@pytest.mark.parametrize("target", ["/", "/jobs/sla-check", "/jobs/dispatch-notifications"])
def test_its_own_pages_are_kept(target: str) -> None:
    assert own_page(target) == target


@pytest.mark.parametrize(
    "target",
    [
        "",
        "//evil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "https://evil.example/",
        "/jobs/../../etc",
        "/jobs/sla-check?x=//evil.example",
        "/jobs/sla-check\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
    ],
)
def test_anything_else_becomes_the_overview(target: str) -> None:
    assert own_page(target) == "/"

"""Loading sql/ and rendering plpy/ bodies, without a server."""

import types

import pytest
from gstjobs.db import describe_target, mask_dsn
from gstjobs.resources import named_queries, plpy_source, render, render_plpy_body


def test_render_replaces_the_entry_point_call_with_the_module() -> None:
    sql = "CREATE PROCEDURE p(job text) LANGUAGE plpython3u AS $plpy$ runner.run_job(job) $plpy$;"
    rendered = render(sql)
    assert rendered.startswith("CREATE PROCEDURE p(job text) LANGUAGE plpython3u AS $plpy$\n")
    assert rendered.endswith("return module.run_job(job)\n$plpy$;")
    assert repr(plpy_source("runner")) in rendered
    assert '"plpy/runner.py"' in rendered


def test_rendered_body_compiles_and_calls_the_entry_point_once_per_session() -> None:
    body = render_plpy_body("runner", "describe", "error")
    # A PL/Python body is the inside of a function: wrap it the way the server does.
    namespace: dict[str, object] = {}
    exec("def body(error):\n" + "\n".join("    " + line for line in body.splitlines()), namespace)
    fake_sd: dict[str, object] = {}
    # the server's plpy is a module, and the body makes its own module of the same type
    namespace.update(SD=fake_sd, GD={}, plpy=types.ModuleType("plpy"))

    class FakeSPIError(Exception):
        spidata = (None, "the detail", None)

    assert namespace["body"](FakeSPIError("it broke")) == "it broke\nDETAIL: the detail"  # type: ignore[operator]
    module = fake_sd["module"]
    assert namespace["body"](FakeSPIError("again")).startswith("again")  # type: ignore[operator]
    assert fake_sd["module"] is module


def test_render_leaves_sql_without_markers_alone() -> None:
    sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1; -- $plpy$ is mentioned"
    assert render(sql) == sql


def test_render_of_an_unknown_module_fails() -> None:
    with pytest.raises(FileNotFoundError):
        render("AS $plpy$ nosuchmodule.main() $plpy$")


def test_named_queries_are_found_by_name() -> None:
    queries = named_queries("queries.sql")
    assert "job-overview" in queries
    assert queries["job-overview"].startswith("-- One row per toolkit job")
    assert "FROM gstjobs.job_overview" in queries["job-overview"]


def test_every_query_the_code_names_exists_and_every_query_is_named() -> None:
    """The operations layer names each query it runs (query(conn, "name", ...), or answer(...)
    for a change): none is missing from sql/queries.sql, and none there is left unused."""
    import re
    from pathlib import Path

    code = "".join(
        path.read_text(encoding="utf-8")
        for path in (Path(__file__).parents[2] / "cli" / "gstjobs").rglob("*.py")
    )
    named = set(re.findall(r'(?:query|answer)\(\s*conn,\s*"([\w-]+)"', code))
    queries = set(named_queries("queries.sql"))
    assert len(named) >= 15
    assert named - queries == set(), "named in the code, missing from sql/queries.sql"
    assert queries - named == set(), "in sql/queries.sql, used nowhere"


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://ops:s3cret@db:5432/gst", "postgresql://ops:***@db:5432/gst"),
        ("host=db user=ops password=s3cret dbname=gst", "host=db user=ops password=*** dbname=gst"),
        ("host=db password='a b c' dbname=gst", "host=db password=*** dbname=gst"),
        ("postgresql://ops@db/gst", "postgresql://ops@db/gst"),
    ],
)
def test_passwords_are_masked(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


def test_target_is_described_without_password() -> None:
    described = describe_target("postgresql://ops:s3cret@db:6432/gst")
    assert described == "ops@db:6432/gst"

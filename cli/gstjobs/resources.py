"""Load the SQL files of sql/ and render PL/Python bodies from plpy/ into them."""

import hashlib
import re
import types
from importlib import resources
from typing import Any

# In sql/, a PL/Python function's body is written as a call of its entry point, e.g.
#   AS $plpy$ runner.run_job(job, as_of, tenant_id) $plpy$
# and rendered from plpy/runner.py, the one home of that code.
PLPY_CALL = re.compile(r"\$plpy\$\s*(?P<module>\w+)\.(?P<entry>\w+)\((?P<args>[^)]*)\)\s*\$plpy\$")

QUERY_NAME = re.compile(r"^-- name: (?P<name>[\w-]+)\s*$", re.MULTILINE)


def sql_text(name: str) -> str:
    """The text of sql/<name>."""
    return resources.files("gstjobs.sql").joinpath(name).read_text(encoding="utf-8")


def plpy_source(module: str) -> str:
    """The source of plpy/<module>.py."""
    return resources.files("gstjobs.plpy").joinpath(f"{module}.py").read_text(encoding="utf-8")


# Programs a module starts as processes of their own, given as source text under a name:
# dispatch starts plpy/sender.py (`python3 -I -c SENDER_PROGRAM`).
PROGRAMS = {"dispatch": {"SENDER_PROGRAM": "sender"}}


def render_plpy_body(module: str, entry: str, args: str) -> str:
    """A PL/Python function body that runs plpy/<module>.py's <entry>(<args>).

    plpy/common.py and then the module are run once per session into one namespace kept in
    SD, so a call costs a dictionary lookup; tracebacks name the files and real lines. Their
    compiled code is shared in GD by every function of the session, keyed by the source's
    checksum: a run calls several functions (run_job, run_begin, run_batch, the body) that
    embed the same files, and compiling them again each time was most of a run's fixed cost.
    (GD is written only by plpython3u functions, which only a superuser can create.)
    """
    common, source = plpy_source("common"), plpy_source(module)
    lines = [
        "",
        'module = SD.get("module")',
        "if module is None:",
        # plpy is a module: its type makes another without importing types in the new
        # session pg_cron starts for every run
        f'    module = type(plpy)("plpy_{module}")',
        "    module.plpy, module.GD, module.SD = plpy, GD, SD",
        '    compiled = GD.setdefault("gstjobs.compiled", {})',
    ]
    for name, text in (("common", common), (module, source)):
        key = f"plpy/{name}.py@{checksum(text)[:16]}"
        lines += [
            f'    code = compiled.get("{key}")',
            "    if code is None:",
            f'        code = compiled["{key}"] = compile({text!r}, "plpy/{name}.py", "exec")',
            "    exec(code, module.__dict__)",
        ]
    for name, program in PROGRAMS.get(module, {}).items():
        lines.append(f"    module.{name} = {plpy_source(program)!r}")
    lines += ['    SD["module"] = module', f"return module.{entry}({args})", ""]
    return "\n".join(lines)


def load_plpy_module(module: str, plpy: Any = None) -> types.ModuleType:
    """plpy/<module>.py as the server builds it (plpy/common.py and the module in one
    namespace), outside the server: for unit tests with a fake plpy, and for the benchmark's
    use of the jobs' statements."""
    namespace = types.ModuleType(f"plpy_{module}")
    namespace.__dict__.update(plpy=plpy, GD={}, SD={})
    for name in ("common", module):
        exec(compile(plpy_source(name), f"plpy/{name}.py", "exec"), namespace.__dict__)
    for name, program in PROGRAMS.get(module, {}).items():
        setattr(namespace, name, plpy_source(program))
    return namespace


def render(sql: str) -> str:
    """SQL with every $plpy$ module.entry(args) $plpy$ marker replaced by its body."""

    def body(match: re.Match[str]) -> str:
        rendered = render_plpy_body(match["module"], match["entry"], match["args"].strip())
        return f"$plpy${rendered}$plpy$"

    return PLPY_CALL.sub(body, sql)


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def named_queries(name: str) -> dict[str, str]:
    """The `-- name: NAME` blocks of sql/<name>, each with its statement."""
    text = sql_text(name)
    parts = QUERY_NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}

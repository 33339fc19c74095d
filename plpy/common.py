"""Helpers every PL/Python module of gstjobs gets: prepared plans kept for the session."""


def plan(key, query, types):
    """A prepared plan for query, prepared once per session and kept in SD."""
    cached = SD.get(key)
    if cached is None:
        cached = SD[key] = plpy.prepare(query, types)
    return cached


def one(key, query, types, args):
    """The first row of a prepared statement."""
    return plpy.execute(plan(key, query, types), args)[0]


JOB_ARG_TYPES = ["bigint", "timestamptz", "bigint", "boolean"]


def guard(run_id):
    """Refuse to work outside a run this session started (see gstjobs.run_guard)."""
    one("guard", "SELECT gstjobs.run_guard($1)", ["bigint"], [run_id])

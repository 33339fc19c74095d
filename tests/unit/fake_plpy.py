"""A fake of PL/Python's plpy for unit tests of plpy/ modules without a server (the real one
is proven in tests/integration): the runner's procedure and its steps, scripted."""

from typing import Any


class FakePlpy:
    """Just enough of plpy for the runner's procedure: gstjobs.run_begin answering from a
    script of (run_id, acquired), gstjobs.run_batch from a script of done flags; every call
    records whether run_job's mark was set in GD at that moment."""

    class SPIError(Exception):
        spidata = (None, None, None)

    def __init__(self, begins: list[tuple[int | None, bool]], batches: list[bool]) -> None:
        self.begins = iter(begins)
        self.batches = iter(batches)
        self.calls: list[str] = []
        self.GD: dict[str, Any] = {}

    def prepare(self, query: str, types: list[str]) -> str:
        assert all(t.startswith("pg_catalog.") for t in types), types
        return query

    def execute(self, plan: str, args: list[Any] | None = None) -> list[dict[str, Any]]:
        marked = "marked" if self.GD.get("gstjobs.run_job") else "unmarked"
        if "run_begin" in plan:
            run_id, acquired = next(self.begins)
            self.calls.append(f"begin {marked}")
            return [{"run_id": run_id, "acquired": acquired}]
        if "run_batch" in plan:
            self.calls.append(f"batch {(args or [None])[0]} {marked}")
            return [{"done": next(self.batches)}]
        self.calls.append(f"pause {marked}")
        return []

    def commit(self) -> None:
        self.calls.append("commit")

"""``sweep --dry-run``: can every cell of a spec run? Checked without running any.

:func:`check_spec` parses the spec (structural errors raise :class:`SpecError` at once), then for
every grid point runs the task's validator (``task.validate``) and its deeper check
(``task.check``: for ``estimation``, the population and the data are built and every estimator is
constructed and validated against them, without fitting), with the seed of the point's first
replicate. Every failing point is collected, so one dry run lists all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import one_line
from .registry import get_task
from .spec import SpecError, SweepSpec, load_spec

__all__ = ["CellProblem", "check_spec", "format_problems"]


@dataclass(frozen=True)
class CellProblem:
    """A grid point that cannot run: its index, axis values, the offending key and why."""

    index: int
    axis_values: dict
    key: str
    message: str

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v!r}" for k, v in self.axis_values.items())
        head = f"cell {self.index}" + (f" ({where})" if where else "")
        return f"{head}: {self.key}: {self.message}" if self.key else f"{head}: {self.message}"


def check_spec(spec_or_path) -> tuple[SweepSpec, list[CellProblem]]:
    """``(spec, problems)``: the parsed spec and one :class:`CellProblem` per grid point that
    cannot run (empty when all can). Raises :class:`SpecError` for a spec that does not parse."""
    spec = load_spec(spec_or_path, validate=False)
    task = get_task(spec.task)
    problems = []
    for index, (params, axis_values) in enumerate(spec.points()):
        cell = spec.make_cell(params, 0, index, axis_values)
        try:
            if task.validate is not None:
                task.validate(params)
            if task.check is not None:
                task.check(params, cell.seed_sequence())
        except SpecError as exc:
            problems.append(CellProblem(index, axis_values, exc.key, one_line(exc.message)))
        except (ValueError, TypeError) as exc:
            problems.append(CellProblem(index, axis_values, "", one_line(exc)))
    return spec, problems


def format_problems(spec: SweepSpec, problems, limit: int = 10) -> list[str]:
    """Lines for a report: a head line, one line per bad grid point (at most ``limit``), and a
    count of the rest."""
    n = spec.n_points
    lines = [f"{spec.label}: {len(problems)} of {n} grid point{'s' if n != 1 else ''} cannot run "
             "(fix the spec; nothing was run):"]
    lines += [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return lines

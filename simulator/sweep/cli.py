"""``python -m simulator sweep SPEC --out DIR [--workers N] [--executor ...] [--scheduler ADDR]
[--resume] [--where NAME=VALUE[,VALUE...]] [--dry-run]``: a thin wrapper of
:func:`simulator.sweep.run_sweep`. ``--where`` (repeatable) runs part of the grid in the same
folder (:mod:`simulator.sweep.select`).

User errors (a bad spec, an unusable ``--out``, ``--resume`` of a folder that is not a sweep) are
raised as :class:`~simulator.sweep.errors.UserError`; :func:`simulator.cli.main` prints them as
one line and exits 2. ``--dry-run`` checks every cell (:func:`simulator.sweep.check.check_spec`)
and the output folder, and lists the cells that cannot run. A run whose cells failed exits 1 and,
with ``--no-progress`` too, prints the first error on one line.
"""

from __future__ import annotations

import sys


def add_subparser(subparsers):
    p = subparsers.add_parser(
        "sweep", help="run a parameter sweep described by a TOML spec (resumable)",
        description="Run every cell of the grid in SPEC, writing one parquet shard per cell "
                    "to DIR/cells and a manifest; --resume continues a killed or partial run.")
    p.add_argument("spec", metavar="SPEC", help="TOML spec file (see examples/sweeps/)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output directory")
    p.add_argument("--workers", "-j", type=int, default=None, metavar="N",
                   help="parallel workers (default: one per available core)")
    p.add_argument("--executor", choices=("serial", "process", "dask"), default=None,
                   help="where cells run (default: process; dask when --scheduler is given)")
    p.add_argument("--scheduler", metavar="ADDR", default=None,
                   help="Dask scheduler address (tcp://host:8786) or scheduler file (.json)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in DIR (which must hold one): skip finished cells "
                        "whose checksums verify; redo failed, corrupt, edited or unverified "
                        "ones")
    p.add_argument("--threads", type=int, default=1, metavar="T",
                   help="BLAS/numba threads per cell (default 1; part of bit-for-bit identity)")
    p.add_argument("--where", action="append", default=[], metavar="NAME=VALUE[,VALUE...]",
                   help="run only the cells whose axis NAME (or 'replicate') takes one of these "
                        "values, in the same folder with the same ids and seeds: a long grid "
                        "split across sittings or machines (repeatable; --resume later "
                        "finishes the rest)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar and no summary")
    p.add_argument("--dry-run", action="store_true",
                   help="check that every cell can run (estimators against their population, "
                        "without fitting) and that DIR is usable; print the number of cells; "
                        "run nothing")
    p.set_defaults(func=_sweep)
    return p


def _check_resume_dir(out):
    """``--resume`` needs an existing sweep folder (the library's ``resume=True`` starts afresh
    without one; the command line asks for it explicitly)."""
    from pathlib import Path

    from .errors import UserError
    from .store import MANIFEST

    out = Path(out)
    if not out.exists():
        raise UserError(f"--resume: {out} does not exist",
                        hint="drop --resume to start a new sweep there, or give the folder of "
                             "an earlier run")
    if not out.is_dir():
        raise UserError(f"--resume: {out} is a file, not a sweep folder",
                        hint="give the folder of an earlier run")
    if not (out / MANIFEST).is_file():
        raise UserError(f"--resume: {out} is not a sweep folder (no {MANIFEST})",
                        hint="drop --resume to start a new sweep there, or give the folder of "
                             "an earlier run")


def _first_failure(df) -> str:
    failed = df[df["status"] != "ok"]
    if not len(failed):
        return ""
    row = failed.iloc[0]
    err = str(row.get("error") or "").strip()
    first = err.splitlines()[0] if err else "(no message)"
    return f"cell {int(row['cell_index'])} replicate {int(row['replicate'])}: {first}"


def _sweep(args) -> int:
    from .runner import check_options, preflight, run_sweep
    from .select import parse_where

    executor = check_options(args.executor or ("dask" if args.scheduler else "process"),
                             args.scheduler, args.workers, args.threads)
    where = parse_where(args.where)
    if args.resume:
        _check_resume_dir(args.out)
    if args.dry_run:
        from .check import check_spec, format_problems

        spec, problems = check_spec(args.spec)
        if problems:
            lines = format_problems(spec, problems)
            print("error: " + "\n".join(lines), file=sys.stderr)
            return 2
        from .select import describe_where, select_cells

        holds = preflight(spec, args.out, resume=True if args.resume else None)
        picked = select_cells(spec, spec.cells(), where)
        axes = list(spec.axes) + [n for z in spec.zips for n in z]
        note = (f"; note: {args.out} already holds a sweep, run with --resume to continue it"
                if holds and not args.resume else "")
        part = (f"; --where {describe_where(where)} selects {len(picked)} of them"
                if where else "")
        print(f"{spec.label}: task {spec.task!r}, {spec.n_points} grid points x "
              f"{spec.replicates} replicates = {spec.n_cells} cells{part}; axes: "
              f"{', '.join(axes) or '(none)'}; spec hash {spec.hash[:12]}; every cell checked"
              + note)
        return 0
    try:
        df = run_sweep(args.spec, args.out, workers=args.workers, executor=executor,
                       scheduler=args.scheduler, resume=args.resume,
                       progress=not args.no_progress, threads=args.threads,
                       where=where or None)
    except KeyboardInterrupt:
        print("interrupted; finished cells are saved (--resume continues)", file=sys.stderr)
        return 130
    summary = df.attrs.get("summary", {})
    if not summary.get("failed"):
        return 0
    if args.no_progress:  # the summary (with the failures) is not printed: say why it exits 1
        ran = summary.get("computed", 0) + summary["failed"]
        what = "all" if summary["failed"] == ran else f"{summary['failed']} of"
        print(f"error: {what} {ran} computed cell(s) failed; first: {_first_failure(df)} "
              f"(the 'error' column of simulator.sweep.load({str(args.out)!r}) has each "
              "traceback; --resume recomputes failed cells)", file=sys.stderr)
    return 1

"""``python -m simulator sweep SPEC --out DIR [--workers N] [--executor ...] [--scheduler ADDR]
[--resume]``: a thin wrapper of :func:`simulator.sweep.run_sweep`."""

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
                   help="continue the sweep in DIR: skip finished cells, redo failed/corrupt ones")
    p.add_argument("--threads", type=int, default=1, metavar="T",
                   help="BLAS/numba threads per cell (default 1; part of bit-for-bit identity)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar and no summary")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the spec and print the number of cells; run nothing")
    p.set_defaults(func=_sweep)
    return p


def _sweep(args) -> int:
    from .runner import run_sweep
    from .spec import load_spec

    if args.dry_run:
        spec = load_spec(args.spec)
        axes = list(spec.axes) + [n for z in spec.zips for n in z]
        print(f"{spec.label}: task {spec.task!r}, {spec.n_points} grid points x "
              f"{spec.replicates} replicates = {spec.n_cells} cells; axes: "
              f"{', '.join(axes) or '(none)'}; spec hash {spec.hash[:12]}")
        return 0
    executor = args.executor or ("dask" if args.scheduler else "process")
    try:
        df = run_sweep(args.spec, args.out, workers=args.workers, executor=executor,
                       scheduler=args.scheduler, resume=args.resume,
                       progress=not args.no_progress, threads=args.threads)
    except KeyboardInterrupt:
        print("interrupted; finished cells are saved (--resume continues)", file=sys.stderr)
        return 130
    return 1 if df.attrs.get("summary", {}).get("failed") else 0

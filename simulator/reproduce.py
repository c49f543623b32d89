"""``python -m simulator reproduce``: the main job — every figure with its theory overlay and the
theory-check table. The work is done by :func:`figures.runner.run_figures`."""

from __future__ import annotations


def add_subparser(subparsers):
    p = subparsers.add_parser(
        "reproduce", help="reproduce the figures and the theory-check table (quick defaults)")
    p.add_argument("--only", nargs="+", metavar="F", help="figures to run (fig1 ... fig12)")
    p.add_argument("--full", action="store_true", help="paper-size grids (hours)")
    p.add_argument("--size", choices=("tiny", "quick", "full"), default=None,
                   help="grid size (default quick; --full is --size full)")
    p.add_argument("--out", default="results", metavar="DIR", help="output folder")
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    p.add_argument("--executor", choices=("process", "serial", "dask"), default="process")
    p.add_argument("--resume", action="store_true",
                   help="reuse finished cells of an earlier run in DIR with the same specs")
    p.add_argument("--where", action="append", default=[], metavar="NAME=VALUE[,VALUE...]",
                   help="with --only and one figure: run only the cells of its grid whose axis "
                        "NAME takes these values (a full-size figure split across sittings); "
                        "the figure is drawn by the run that completes the grid (--resume)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from figures.runner import run_figures
    from simulator.sweep.select import parse_where

    size = "full" if args.full else (args.size or "quick")
    where = parse_where(args.where)
    if where and len(args.only or ()) != 1:
        raise ValueError("--where selects cells by one figure's axes: give exactly one figure "
                         "with --only (e.g. --only fig11 --where N=10000)")
    table = run_figures(args.only, args.out, size=size, workers=args.workers,
                        executor=args.executor, resume=args.resume, where=where or None)
    return 0 if len(table) or table.attrs.get("partial") else 1

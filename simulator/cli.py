"""Command line: ``python -m simulator`` / ``pluralrlhf``.

Thin by design: every sub-command calls one library function that tests call too. Heavy imports
happen inside the handlers so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, function) pairs that add optional sub-commands; a missing module means the feature
# has not landed (or its extra is not installed) and the sub-command is simply absent.
_PLUGINS = [
    ("simulator.reproduce", "add_subparser"),
    ("simulator.sweep.cli", "add_subparser"),
    ("simulator.llm.cli", "add_subparser"),
]


def _bench(args) -> int:
    from .bench import run_benchmarks

    run_benchmarks(args.names, quick=args.quick, seed=args.seed, json_path=args.json)
    return 0


def _warmup(args) -> int:
    from .warmup import compile_kernels

    compile_kernels(verbose=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pluralrlhf", description="Simulator for pluralistic RLHF (python -m simulator).")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"pluralrlhf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("bench", help="benchmarks: our times beside the peers', side by side")
    p.add_argument("names", nargs="*", default=["all"],
                   help="benchmarks to run: mle, batched, sharedrep, em, policy, or all; many_users, fewshot, coldstart and reproduce run only when named")
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.set_defaults(func=_bench)

    p = sub.add_parser("warmup", help="compile the numba kernels into their on-disk cache "
                       "(the install step runs it; a fresh clone's first fit then takes < 1 s)")
    p.set_defaults(func=_warmup)

    for module, fn in _PLUGINS:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that part is not present
            raise
        getattr(mod, fn)(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # bad input: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

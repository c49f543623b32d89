"""Command line: ``python -m simulator`` / ``pluralrlhf``.

Thin by design: every sub-command calls one library function that tests call too. Heavy imports
happen inside the handlers so that ``--help`` stays fast.

User errors never show a traceback. One mechanism, in :func:`main`: a handler's
:class:`UserError` (raised by the library where the input is the user's fault; see
:mod:`simulator.sweep.errors`), any other ``ValueError``, an ``OSError`` (a path that cannot be
read or written) and a missing optional package become ``error: <what> (<how to fix it>)`` on
one line of stderr and exit code 2; a bad command line does too (:class:`ArgumentParser`).
Anything else is a bug and raises.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .sweep.errors import UserError, describe_os_error, one_line

__all__ = ["main", "build_parser", "UserError", "ArgumentParser"]

# (module, function) pairs that add optional sub-commands; a missing module means the feature
# has not landed (or its extra is not installed) and the sub-command is simply absent.
_PLUGINS = [
    ("simulator.reproduce", "add_subparser"),
    ("simulator.sweep.cli", "add_subparser"),
    ("simulator.llm.cli", "add_subparser"),
]


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (``PROG: error: MESSAGE (see PROG --help)``);
    sub-command parsers inherit the class."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def check_output_file(path, option: str):
    """Raise :class:`UserError` unless ``path`` can be written as a file (checked before a long
    computation, not after it)."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise UserError(f"{option} {p} is a folder", hint="give a file path")
    parent = p.parent
    if not parent.is_dir():
        raise UserError(f"{option} {p}: the folder {parent} does not exist",
                        hint="create it or choose another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UserError(f"{option} {p} is not writable",
                        hint="check the permissions or choose another path")


def _bench(args) -> int:
    from .bench import run_benchmarks

    if args.json is not None:
        check_output_file(args.json, "--json")
    run_benchmarks(args.names, quick=args.quick, seed=args.seed, json_path=args.json)
    return 0


def _warmup(args) -> int:
    from .warmup import compile_kernels

    compile_kernels(verbose=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="pluralrlhf", description="Simulator for pluralistic RLHF (python -m simulator).")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"pluralrlhf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("bench", help="benchmarks: our times beside the peers', side by side")
    p.add_argument("names", nargs="*", default=["all"],
                   help="benchmarks to run: mle, batched, sharedrep, em, policy, or all; many_users, fewshot, arena, coldstart and reproduce run only when named")
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


_OWN_PACKAGES = ("simulator", "figures", "theory")


def _user_error_message(exc: BaseException) -> str | None:
    """The one-line message for an exception that is the user's fault, else None (a bug)."""
    if isinstance(exc, ValueError):  # UserError, SpecError, SweepError and bad values
        return one_line(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    if isinstance(exc, ModuleNotFoundError) and exc.name \
            and exc.name.split(".")[0] not in _OWN_PACKAGES:
        return (f"this command needs the package {exc.name.split('.')[0]!r}, which is not "
                "installed (install the extra it belongs to, e.g. pip install "
                "'pluralrlhf[llm]' or 'pluralrlhf[dask]')")
    return None


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code (2 with
    one line on stderr for a user error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _user_error_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Run figures: build each figure's sweep, run it on the sweep engine, analyse, and write the
theory-check table (``theory_checks.csv`` / ``theory_checks.md``)."""

from __future__ import annotations

import importlib
import shutil
import sys
import time
from pathlib import Path

import theory
from figures import FIGURES

SIZES = ("tiny", "quick", "full")


def to_sweep_spec(fig_spec: dict) -> dict:
    """A figure's compact spec -> the sweep engine's spec (:mod:`simulator.sweep.spec`)."""
    sweep = {k: fig_spec[k] for k in ("name", "task", "seed", "replicates") if k in fig_spec}
    if "seed_ignore" in fig_spec:
        sweep["seed_ignore"] = list(fig_spec["seed_ignore"])
    out = {"sweep": sweep, **fig_spec.get("params", {})}
    if fig_spec.get("axes"):
        out["axes"] = fig_spec["axes"]
    if fig_spec.get("zip"):
        out["zip"] = fig_spec["zip"]
    return out


def sweep_spec(spec: dict) -> dict:
    """A figure's spec in the sweep engine's format (older compact specs are converted)."""
    return spec if "sweep" in spec else to_sweep_spec(spec)


def run_figure(name: str, out_dir, size: str = "quick", workers=None, executor="process",
               resume: bool = False, progress: bool = True, where: dict | None = None):
    """Run one figure; returns its list of :class:`theory.ClaimResult`.

    ``where`` (axis name -> value(s), :mod:`simulator.sweep.select`) runs only part of its grid
    in ``OUT/sweeps/NAME``: a full-size figure split across sittings. While the grid is not
    complete nothing is drawn or claimed and the return value is ``None``; the run that
    finishes it (``resume=True``) draws the figure from all of its cells.
    """
    from simulator.sweep import run_sweep
    from simulator.warmup import ensure_compiled

    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; choose from {sorted(FIGURES)}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}; got {size!r}")
    mod = importlib.import_module(FIGURES[name])
    skip = getattr(mod, "available", lambda: None)()
    if skip:
        raise ValueError(skip)
    if hasattr(mod, "prepare"):  # once, before the workers start (e.g. an embedding cache)
        mod.prepare(size)
    ensure_compiled()  # the workers load the numba kernels from the cache: fit times are fits
    spec = sweep_spec(mod.spec(size))
    if where:  # a bad selection is refused before an earlier run's folder is cleared
        from simulator.sweep import load_spec
        from simulator.sweep.select import select_cells

        loaded = load_spec(spec)
        select_cells(loaded, loaded.cells(), where)
    out_dir = Path(out_dir)
    sweep_dir = out_dir / "sweeps" / name
    if sweep_dir.exists() and not resume:
        shutil.rmtree(sweep_dir)  # a fresh run: results of older code must not leak in
    df = run_sweep(spec, sweep_dir, workers=workers, executor=executor,
                   resume=resume, progress=progress, where=where)
    failed = df[df["status"] != "ok"] if "status" in df else df.iloc[:0]
    if len(failed):
        first = str(failed["error"].iloc[0]).strip().splitlines()[-1]
        raise RuntimeError(f"{name}: {len(failed)} cell(s) failed; first error: {first}")
    if not df.attrs["summary"].get("complete", True):
        s = df.attrs["summary"]
        print(f"{name}: {len(df)} of {s['cells']} cells finished in {sweep_dir} "
              f"({s['not_selected']} outside --where); nothing drawn yet: run again with "
              "--resume (without --where, or selecting the rest) to finish the grid and draw "
              "the figure", file=sys.stderr, flush=True)
        return None
    return analyse(mod, df, out_dir)


def analyse(mod, df, out_dir) -> list:
    """A figure's results -> its files and claims: ``points(df)`` is written as ``NAME.csv``,
    ``plot(df, points)`` as ``NAME.png`` / ``NAME.pdf``; returns ``claims(df)``."""
    from figures import style

    if not hasattr(mod, "claims"):  # a figure still in the older one-function form
        return mod.analyse(df, out_dir)
    points = mod.points(df)
    style.save(mod.plot(df, points), out_dir, mod.NAME, points)
    return mod.claims(df)


def run_figures(only=None, out_dir="results", size: str = "quick", workers=None,
                executor="process", resume: bool = False, progress: bool = True,
                echo=print, where: dict | None = None):
    """Run the figures (all, or those in ``only``), write the theory-check table, print a summary.

    ``where`` runs part of one figure's grid (``only`` must name exactly that figure; see
    :func:`run_figure`). Returns the claims table as a pandas DataFrame; its
    ``attrs["partial"]`` lists the figures left unfinished by ``where`` (when every figure run
    is partial, no table is written).
    """
    names = list(FIGURES) if not only else list(only)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; choose from {sorted(FIGURES)}")
    if where and len(names) != 1:
        raise ValueError("where (--where) selects cells by one figure's axes: give exactly one "
                         f"figure with --only; got {names}")
    out_dir = Path(out_dir)
    results = []
    partial = []
    t_all = time.perf_counter()
    for i, name in enumerate(names, 1):
        t0 = time.perf_counter()
        mod = importlib.import_module(FIGURES[name])
        skip = getattr(mod, "available", lambda: None)()
        if skip:  # optional inputs missing (a data file, a model wheel): one line, no claims
            echo(f"[{i}/{len(names)}] {skip}")
            continue
        echo(f"[{i}/{len(names)}] {name}: {mod.TITLE} ...")
        claims = run_figure(name, out_dir, size=size, workers=workers, executor=executor,
                            resume=resume, progress=progress, where=where)
        if claims is None:
            partial.append(name)
            echo(f"[{i}/{len(names)}] {name}: part of its grid run in "
                 f"{time.perf_counter() - t0:.0f} s (no claims until the grid is complete)")
            continue
        results.extend(claims)
        echo(f"[{i}/{len(names)}] {name} done in {time.perf_counter() - t0:.0f} s "
             f"({len(claims)} claims)")
    table = theory.claims_table(results)
    table.attrs["partial"] = partial
    if partial and not results:
        return table
    theory.write_theory_checks(results, out_dir)
    echo(summary(table, out_dir, time.perf_counter() - t_all))
    return table


def summary(table, out_dir, elapsed) -> str:
    """Short human-readable summary of the claims table."""
    counts = table["verdict"].value_counts()
    lines = [f"\nTheory checks ({len(table)} claims, {elapsed:.0f} s): "
             + ", ".join(f"{counts.get(v, 0)} {v}" for v in theory.VERDICTS)]
    for _, r in table.iterrows():
        ci = "" if r["ci_low"] != r["ci_low"] else f" [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
        flag = "" if r["verified"] else " (unverified constant/rate)"
        lines.append(f"  {r['verdict']:>13}  {r['figure']}: {r['quantity']} = "
                     f"{r['measured']:.3g}{ci}; predicted {r['prediction']}{flag}")
    lines.append(f"Figures and {Path(out_dir) / 'theory_checks.md'} written to {out_dir}/")
    return "\n".join(lines)


def main_for(module_name: str, argv=None) -> int:
    """``python -m figures.figN_...``: run one figure on its own."""
    import argparse

    name = next(k for k, v in FIGURES.items() if v == module_name)
    p = argparse.ArgumentParser(prog=f"python -m {module_name}")
    p.add_argument("--out", default="results")
    p.add_argument("--size", choices=SIZES, default="quick")
    p.add_argument("--full", action="store_true", help="same as --size full")
    p.add_argument("--workers", type=int)
    a = p.parse_args(argv)
    run_figures([name], a.out, size="full" if a.full else a.size, workers=a.workers,
                echo=lambda s: print(s, file=sys.stderr))
    return 0

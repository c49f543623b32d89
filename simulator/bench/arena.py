"""`python -m simulator bench arena [--quick]`: the arena's protocols (:mod:`simulator.arena`)
printed as tables with 95% t-intervals over seeds."""

from __future__ import annotations

import time

import numpy as np

from ..arena import (
    PROTOCOLS,
    SIZES,
    best_gap,
    groups_minority,
    protocol_grid,
    summarise,
    t_interval,
)
from . import format_table, register


def _fmt_cell(row, met):
    if met not in row:
        return None
    m, h = row[met], row[f"{met}_ci"]
    return f"{m:.3f}" + ("" if not np.isfinite(h) else f" +- {h:.3f}")


def run_protocols(size, seed, out=print):
    """Run every protocol setting of ``size`` over its seeds; a row per (setting, method)."""
    rows = []
    for i, (proto, params) in enumerate(protocol_grid(size)):
        t0 = time.perf_counter()
        reps = [PROTOCOLS[proto](params, np.random.SeedSequence([seed, i, r]))
                for r in range(SIZES[size]["seeds"])]
        setting = {k: params[k] for k in ("minority", "alpha") if k in params}
        summ = summarise(reps)
        metrics = sorted({k for s in summ for k in s
                          if k not in ("method", "side") and not k.endswith("_ci")})
        label = f"{proto} " + ", ".join(f"{k} = {v:g}" for k, v in setting.items())
        out(f"\n[{label}] {SIZES[size]['seeds']} seeds, {time.perf_counter() - t0:.1f} s")
        out(format_table([{"method": s["method"], "side": s["side"],
                           **{m: _fmt_cell(s, m) for m in metrics}} for s in summ],
                         [("method", "method", "{}"), ("side", "side", "{}")]
                         + [(m, m, "{}") for m in metrics]))
        if proto != "policy_level":
            g, h = t_interval(best_gap(reps))
            # the point estimate decides (the wording); the interval is printed beside it
            out(f"  target: our best held-out accuracy within 0.01 of the best peer's "
                f"(mean gap {g:+.4f} +- {h:.4f}): {'met' if g >= -0.01 else 'NOT met'}")
        for s in summ:
            rows.append({"protocol": proto, **setting, **s})
    return rows


@register("arena", explicit=True)
def run(quick: bool = False, seed: int = 0, out=print):
    """Run the arena at the quick or default (full) size; returns one row per setting x method."""
    size = "quick" if quick else "full"
    t0 = time.perf_counter()  # numba kernels and torch load on first use: not in fit_s
    groups_minority({**SIZES["tiny"], "minority": 0.1}, np.random.SeedSequence([seed, 999]))
    out(f"compile_s (first calls, one tiny replicate): {time.perf_counter() - t0:.1f}")
    out(f"Arena (issue 14), size {size}: mean +- 95% t-interval over {SIZES[size]['seeds']} "
        "seeds; fit_s: seconds per fit; fit_mb: peak MiB of one fit (tracemalloc; torch and "
        "numba allocations not counted)")
    return run_protocols(size, seed, out)

"""Evaluation: per-group mean scores, win rates against the gold policy, paper tables, plots.

Protocol of SharedRep-RLHF: one completion per test prompt per trained policy; both gold group
scores of every completion; mean (± SEM) per group; the win rate of a method for group g is the
fraction of test prompts on which its completion has a *strictly* higher gold group-g score than
the gold-reward policy's completion for the same prompt.  Every win rate goes through the
simulator's :func:`simulator.fairness.paired_win_rate` (:func:`win_rate`).

Methods are named ``pooled`` / ``separate`` / ``sharedrep`` / ``gold`` (:mod:`simulator.llm.methods`;
the papers' ``uniform`` / ``maxmin`` are accepted in run records).  The paper-layout table
(:func:`format_table`) and the plot label them with the papers' names
(:data:`~simulator.llm.methods.PAPER_LABELS`: Uniform = pooled, MaxMin = separate).
"""

from __future__ import annotations

import numpy as np

from .methods import PAPER_LABELS, RL_METHODS, canonical_method

METHOD_LABELS = PAPER_LABELS
METHOD_ORDER = ("pooled", "separate", "sharedrep", "gold")  # column order of the tables


def sem(x) -> float:
    """Standard error of the mean (0 for fewer than two values)."""
    x = np.asarray(x, float)
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


def win_rate(scores, baseline_scores, ties: str = "half") -> float:
    """Win rate of paired prompts against the baseline's: the simulator's rule
    (:func:`simulator.fairness.paired_win_rate`; ties count half, ``ties="loss"`` for the papers'
    strict comparison)."""
    from ..fairness import paired_win_rate

    return paired_win_rate(scores, baseline_scores, ties=ties)


def paired_scores(records: list, baseline: list, group: int) -> tuple:
    """Align two lists of evaluation records on ``prompt_id``; return group-``group`` scores."""
    base = {r["prompt_id"]: r["group_scores"][group] for r in baseline}
    keys = [r["prompt_id"] for r in records if r["prompt_id"] in base]
    mine = {r["prompt_id"]: r["group_scores"][group] for r in records}
    return np.array([mine[k] for k in keys]), np.array([base[k] for k in keys])


def summarise(runs: list, group_names: list, baseline: str = "gold", ties: str = "loss") -> list:
    """Rows ``{p, method, group means ± SEM, win rates}`` averaged over seeds.

    Parameters
    ----------
    runs : list of dict
        ``{"method", "p" (None for gold), "seed", "records"}``, records carrying
        ``prompt_id`` and ``group_scores`` (list of U floats).  Method names are normalised
        (``maxmin`` -> ``separate``, ``uniform`` -> ``pooled``).
    group_names : list of str
        Group 0 = minority.
    baseline : str
        Method whose completions are the win-rate reference (per seed).
    ties : {"loss", "half"}
        Tie rule of the win rates (:func:`simulator.fairness.paired_win_rate`); ``"loss"`` by
        default here because this is the papers' table ("strictly higher than gold"), while the
        simulator's rule elsewhere is ``"half"``.

    Returns
    -------
    list of dict
        One row per (p, method); gold rows are repeated for every p.  Keys:
        ``p, method, mean_<g>, sem_<g>, win_<g>`` (win in percent, absent for the baseline).
        SEM is over all prompt-level scores pooled across seeds.
    """
    baseline = canonical_method(baseline, "evaluate.baseline", RL_METHODS)
    runs = [{**r, "method": canonical_method(r["method"], "runs method", RL_METHODS)}
            for r in runs]
    base = {r["seed"]: r["records"] for r in runs if r["method"] == baseline}
    ps = sorted({r["p"] for r in runs if r["p"] is not None})
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in runs)]
    rows = []
    for p in ps:
        for m in methods:
            sel = [r for r in runs if r["method"] == m and (r["p"] == p or m == baseline)]
            if not sel:
                continue
            row = {"p": p, "method": m}
            for gi, g in enumerate(group_names):
                vals = np.concatenate([[x["group_scores"][gi] for x in r["records"]] for r in sel])
                row[f"mean_{g}"], row[f"sem_{g}"] = float(vals.mean()), sem(vals)
                if m != baseline and base:
                    wins = [win_rate(*paired_scores(r["records"], base[r["seed"]], gi), ties=ties)
                            for r in sel if r["seed"] in base]
                    row[f"win_{g}"] = 100.0 * float(np.mean(wins)) if wins else float("nan")
            rows.append(row)
    return rows


def format_table(rows: list, group_names: list, baseline: str = "gold") -> str:
    """Markdown table in the SharedRep paper's layout.

    Rows = minority proportion; column groups = Mean <group> Score (each method, then gold) for
    each group, then <group> Win Rate % (each non-gold method); the largest win rate is bold.
    Columns carry the papers' names (module docstring: Uniform = pooled, MaxMin = separate).
    """
    baseline = canonical_method(baseline, "evaluate.baseline", RL_METHODS)
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in rows)]
    learned = [m for m in methods if m != baseline]
    head, sub = ["p"], [""]
    for g in group_names:
        head += [f"Mean {g} score"] + [""] * (len(methods) - 1)
        sub += [METHOD_LABELS.get(m, m) for m in methods]
    for g in group_names:
        head += [f"{g} win rate %"] + [""] * (len(learned) - 1)
        sub += [METHOD_LABELS.get(m, m) for m in learned]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| " + " | ".join(sub) + " |"]
    for p in sorted({r["p"] for r in rows}):
        by = {r["method"]: r for r in rows if r["p"] == p}
        cells = [f"{p:g}"]
        for g in group_names:
            cells += [f"{by[m][f'mean_{g}']:.4f} ± {by[m][f'sem_{g}']:.4f}" if m in by else "–"
                      for m in methods]
        for g in group_names:
            wins = {m: by[m].get(f"win_{g}", float("nan")) for m in learned if m in by}
            best = max((v for v in wins.values() if not np.isnan(v)), default=None)
            cells += [("**{:.2f}**" if len(wins) > 1 and v == best else "{:.2f}").format(v)
                      if m in wins else "–" for m, v in ((m, wins.get(m)) for m in learned)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_scores_vs_p(rows: list, group_names: list, path, title: str = "") -> None:
    """One panel per group: mean score (± SEM) vs minority proportion, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(group_names), figsize=(4.5 * len(group_names), 3.5),
                             squeeze=False)
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in rows)]
    for ax, g in zip(axes[0], group_names):
        for m in methods:
            sel = sorted((r for r in rows if r["method"] == m), key=lambda r: r["p"])
            ax.errorbar([r["p"] for r in sel], [r[f"mean_{g}"] for r in sel],
                        yerr=[r[f"sem_{g}"] for r in sel], marker="o", capsize=3,
                        linestyle="--" if m == "gold" else "-", label=METHOD_LABELS.get(m, m))
        ax.set_xlabel("minority proportion p")
        ax.set_ylabel(f"mean {g} score")
        ax.set_title(f"{g} group")
    axes[0][0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- seeds and CIs
def mean_ci(values, level: float = 0.95) -> tuple:
    r"""Mean and two-sided Student-t confidence interval over independent replicates (seeds).

    ``mean ± t_{n-1, (1 + level) / 2} s / sqrt(n)``, s the sample standard deviation (ddof 1).

    Returns
    -------
    mean, low, high : float
        ``low = high = nan`` for fewer than two values.
    """
    from scipy.stats import t

    x = np.asarray(values, float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"values must be a non-empty 1-d sequence; got shape {x.shape}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan")
    half = float(t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, m - half, m + half


def seed_win_rates(runs: list, group_names: list, baseline: str = "gold",
                   ties: str = "loss") -> list:
    """Per-seed win rates (percent) against the baseline of the same seed.

    Returns
    -------
    list of dict
        ``{p, method, seed, win_<g>}`` for every non-baseline run (same rule as
        :func:`summarise`, which averages these over seeds).
    """
    baseline = canonical_method(baseline, "evaluate.baseline", RL_METHODS)
    runs = [{**r, "method": canonical_method(r["method"], "runs method", RL_METHODS)}
            for r in runs]
    base = {r["seed"]: r["records"] for r in runs if r["method"] == baseline}
    out = []
    for r in runs:
        if r["method"] == baseline or r["seed"] not in base:
            continue
        row = {"p": r["p"], "method": r["method"], "seed": r["seed"]}
        for gi, g in enumerate(group_names):
            row[f"win_{g}"] = 100.0 * win_rate(*paired_scores(r["records"], base[r["seed"]], gi),
                                               ties=ties)
        out.append(row)
    return out


def seed_summary(per_seed: list, group_names: list, contrast: tuple = ("separate", "sharedrep"),
                 level: float = 0.95) -> list:
    """Mean and CI over seeds of each method's per-group win rate and of a paired difference.

    Parameters
    ----------
    per_seed : list of dict
        From :func:`seed_win_rates`.
    contrast : (str, str)
        ``(a, b)``: rows ``"a - b"`` hold the per-seed difference ``win_a - win_b`` (paired on the
        seed, which shares the pairs, the gold policy and the evaluation prompts).

    Returns
    -------
    list of dict
        ``{p, method, n_seeds, win_<g>, low_<g>, high_<g>}``.
    """
    a, b = (canonical_method(m, "contrast", RL_METHODS) for m in contrast)
    out = []
    for p in sorted({r["p"] for r in per_seed}):
        at_p = [r for r in per_seed if r["p"] == p]
        methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in at_p)]
        series = {m: {r["seed"]: r for r in at_p if r["method"] == m} for m in methods}
        if a in series and b in series:
            common = sorted(set(series[a]) & set(series[b]))
            series[f"{a} - {b}"] = {s: {f"win_{g}": series[a][s][f"win_{g}"]
                                        - series[b][s][f"win_{g}"] for g in group_names}
                                    for s in common}
        for name, by_seed in series.items():
            if not by_seed:
                continue
            row = {"p": p, "method": name, "n_seeds": len(by_seed)}
            for g in group_names:
                row[f"win_{g}"], row[f"low_{g}"], row[f"high_{g}"] = mean_ci(
                    [by_seed[s][f"win_{g}"] for s in sorted(by_seed)], level)
            out.append(row)
    return out


def format_seed_summary(rows: list, group_names: list, level: float = 0.95) -> str:
    """Markdown table of :func:`seed_summary`: win rate % mean [CI] per group."""
    pct = f"{100 * level:g}%"
    head = ["p", "method", "seeds"] + [f"{g} win rate % (mean [{pct} CI])" for g in group_names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        label = " - ".join(PAPER_LABELS.get(m, m) for m in r["method"].split(" - "))
        cells = [f"{r['p']:g}", label, str(r["n_seeds"])]
        for g in group_names:
            lo, hi = r[f"low_{g}"], r[f"high_{g}"]
            ci = "n/a (1 seed)" if np.isnan(lo) else f"{lo:.1f}, {hi:.1f}"
            cells.append(f"{r[f'win_{g}']:.1f} [{ci}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

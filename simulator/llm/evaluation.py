"""Evaluation: per-group mean scores, win rates against the gold policy, paper tables, plots.

Protocol of SharedRep-RLHF: one completion per test prompt per trained policy; both gold group
scores of every completion; mean (± SEM) per group; the win rate of a method for group g is the
fraction of test prompts on which its completion has a *strictly* higher gold group-g score than
the gold-reward policy's completion for the same prompt.
"""

from __future__ import annotations

import numpy as np

METHOD_LABELS = {"uniform": "Uniform", "maxmin": "MaxMin", "sharedrep": "SharedRep", "gold": "Gold"}


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
        ``prompt_id`` and ``group_scores`` (list of U floats).
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
    base = {r["seed"]: r["records"] for r in runs if r["method"] == baseline}
    ps = sorted({r["p"] for r in runs if r["p"] is not None})
    methods = [m for m in ("uniform", "maxmin", "sharedrep", "gold")
               if any(r["method"] == m for r in runs)]
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
    """
    methods = [m for m in ("uniform", "maxmin", "sharedrep", "gold")
               if any(r["method"] == m for r in rows)]
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
    methods = [m for m in ("uniform", "maxmin", "sharedrep", "gold")
               if any(r["method"] == m for r in rows)]
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

"""Shared look of the figures and the writing of their files (PNG, PDF, CSV)."""

from __future__ import annotations

from pathlib import Path

UNVERIFIED = "constant unverified"


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.4):
    """A matplotlib figure with the Agg backend (headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def save(fig, out_dir, name: str, points=None) -> list[Path]:
    """Write ``name.png``, ``name.pdf`` and, when given, ``name.csv`` of the plotted points."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.tight_layout()
    fig.savefig(paths[0], dpi=130)
    fig.savefig(paths[1])
    plt.close(fig)
    if points is not None:
        paths.append(out_dir / f"{name}.csv")
        points.to_csv(paths[-1], index=False)
    return paths


def mean_and_band(df, by, value, q=(0.1, 0.9)):
    """Mean and a quantile band of ``value`` across replicates, grouped by ``by``."""
    g = df.groupby(by)[value]
    out = g.mean().rename("mean").to_frame()
    out["lo"] = g.quantile(q[0])
    out["hi"] = g.quantile(q[1])
    out["n_seeds"] = g.size()
    return out.reset_index()


def replicate_matrix(sub, value, grid, axis, src=None, transform=None):
    """Replicates x grid matrix of column ``value`` of a sweep's results (rows: replicate index in
    increasing order; columns: the ``axis`` values in ``grid``; rows missing any grid point are
    dropped). ``src``/``transform`` first set ``axis`` to ``transform(sub[src])`` (a derived
    grid, e.g. 1 - eta)."""
    if src is not None:
        sub = sub.assign(**{axis: transform(sub[src])})
    piv = sub.pivot_table(index="replicate", columns=axis, values=value, aggfunc="first")
    return piv.reindex(columns=grid).sort_index().dropna().to_numpy(dtype=float)

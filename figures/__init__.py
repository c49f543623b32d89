"""One script per figure; each builds a sweep, runs it, lays ``theory/`` over it and judges claims.

A figure module defines

* ``NAME`` and ``TITLE``;
* ``spec(size) -> dict`` — the sweep spec for size "tiny" (tests), "quick" (the default) or
  "full" (paper-size grids); its ``task`` is the module's ``cell``;
* ``cell(params: dict, seed: numpy.random.SeedSequence) -> dict`` — one grid point, one replicate;
* ``analyse(df, out_dir) -> list[theory.ClaimResult]`` — writes ``NAME.png``, ``NAME.pdf`` and
  ``NAME.csv`` (every plotted point) and returns its rows of the theory-check table.

Optional: ``available() -> str | None`` (a one-line reason when the figure cannot run, e.g. a
missing data file: the main job prints it and goes on) and ``prepare(size)`` (run once before
the sweep's workers start, e.g. to fill an on-disk cache).

Each module also runs on its own: ``python -m figures.fig1_mle_rate --out DIR [--full]``.
"""

FIGURES = {
    "fig1": "figures.fig1_mle_rate",
    "fig2": "figures.fig2_minority",
    "fig3": "figures.fig3_policy",
    "fig4": "figures.fig4_impossibility",
    "fig5": "figures.fig5_k_ablation",
    "fig6": "figures.fig6_em",
    "fig7": "figures.fig7_lowrank",
    "fig8": "figures.fig8_pessimism",
    "fig10": "figures.fig10_real_features",
}

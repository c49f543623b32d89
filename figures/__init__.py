"""One script per figure; each builds a sweep, runs it, lays ``theory/`` over it and judges claims.

A figure module defines

* ``NAME`` and ``TITLE``;
* ``spec(size) -> dict`` — the sweep spec (the sweep engine's format, :mod:`simulator.sweep.spec`)
  for size "tiny" (tests), "quick" (the default) or "full" (paper-size grids); its
  ``sweep.task`` is the module's ``cell``;
* ``cell(params: dict, seed: numpy.random.SeedSequence) -> dict`` — one grid point, one replicate,
  computed by library calls only (no domain code in the figure);
* ``claims(df) -> list[theory.ClaimResult]`` — its rows of the theory-check table (no plotting);
* ``points(df) -> pandas.DataFrame`` — every plotted point, written as ``NAME.csv``;
* ``plot(df, points) -> matplotlib.figure.Figure`` — the drawing only, written as ``NAME.png`` and
  ``NAME.pdf`` (:func:`figures.runner.analyse` chains the three).

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
    "fig9": "figures.fig9_arena",
    "fig10": "figures.fig10_real_features",
    "fig11": "figures.fig11_many_users",
    "fig12": "figures.fig12_two_phase",
}

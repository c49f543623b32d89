"""The theory-check table: one row per (figure, claim), written as ``theory_checks.csv`` / ``.md``.

Figure scripts build a :class:`Claim` (what theory predicts, where it comes from, how to judge it),
evaluate it on their measurement (a value with a CI, or a :class:`theory.fitting.SlopeFit`) to get
a :class:`ClaimResult`, and hand the results to the main job, which calls :func:`claims_table`
and :func:`write_theory_checks` (or :func:`to_markdown`).

Example
-------
>>> from theory import Claim, fit_loglog_slope, bt_mle_error_bound
>>> claim = Claim.from_bound(bt_mle_error_bound, figure="fig1", quantity="slope of error in n",
...                          prediction="error ~ n^-1/2", kind="value", predicted=-0.5, atol=0.1)
>>> # result = claim.evaluate_fit(fit_loglog_slope(n_grid, errors_by_seed))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .fitting import SlopeFit, fit_loglog_slope
from .provenance import Source, source_of
from .verdicts import (
    OUTSIDE_REGIME,
    VERDICTS,
    verdict_less_than,
    verdict_lower_bound,
    verdict_upper_bound,
    verdict_value,
)

__all__ = [
    "CLAIM_KINDS",
    "COLUMNS",
    "MIN_REGIME_POINTS",
    "Claim",
    "ClaimResult",
    "claims_table",
    "to_markdown",
    "write_theory_checks",
]

CLAIM_KINDS = ("value", "upper_bound", "lower_bound", "less_than")
"""``value``: measured ~= predicted within tolerance (exponent, ratio); ``upper_bound``:
measured <= predicted; ``lower_bound``: measured >= predicted; ``less_than``: A < B, with the
measurement being the paired difference A - B (``predicted`` unused)."""


@dataclass(frozen=True)
class ClaimResult:
    """One row of the theory-check table.

    Attributes
    ----------
    figure : str
        Figure id (e.g. ``"fig3_sharedrep_minority"``).
    quantity : str
        What was measured (e.g. ``"slope of minority error vs n"``).
    prediction : str
        The prediction in words/formula (e.g. ``"-1/2 (sqrt(d/n_min))"``).
    measured : float
        Point estimate (NaN allowed when nothing could be measured).
    ci_low, ci_high : float
        Confidence interval of ``measured`` (NaN when there is none).
    verdict : str
        ``"holds"``, ``"does not hold"``, ``"inconclusive"`` or ``"outside regime"``
        (:data:`theory.verdicts.VERDICTS`).
    source : str
        Citation with confidence tag (e.g. ``"Zhu, Jordan & Jiao 2023, Lemma 3.1 [P]"``).
    verified : bool
        Whether the predicted statement (incl. constant) was checked against the paper text.
    note : str
        Free text (convention used, caveats, tolerance).
    source_kind : str
        What the cited statement is (:data:`theory.provenance.SOURCE_KINDS`).
    url : str
        Address of the source ("" for the project's own reconstructions and identities).
    read_in_paper : bool
        Whether the cited statement was read in the paper's own text.
    regime : str
        The condition under which the claim is stated ("" when it holds for every n).
    """

    figure: str
    quantity: str
    prediction: str
    measured: float
    ci_low: float
    ci_high: float
    verdict: str
    source: str
    verified: bool
    note: str = ""
    source_kind: str = ""
    url: str = ""
    read_in_paper: bool = False
    regime: str = ""

    def __post_init__(self) -> None:
        for name in ("figure", "quantity", "prediction", "source", "note", "source_kind", "url",
                     "regime"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {getattr(self, name)!r}")
        for name in ("measured", "ci_low", "ci_high"):
            try:
                object.__setattr__(self, name, float(getattr(self, name)))
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{name} must be a number (NaN allowed), got {getattr(self, name)!r}"
                ) from exc
        for name in ("verified", "read_in_paper"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not (math.isnan(self.ci_low) or math.isnan(self.ci_high)) and self.ci_low > self.ci_high:
            raise ValueError(f"ci_low must be <= ci_high, got [{self.ci_low}, {self.ci_high}]")


MIN_REGIME_POINTS = 3
"""Fewest grid points inside a claim's regime for a slope to be fitted there (two points give a
slope with no check of the power law's shape)."""

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ClaimResult))
"""Column order of :func:`claims_table`."""


@dataclass(frozen=True)
class Claim:
    """A prediction to be checked, with its decision rule (see :mod:`theory.verdicts`).

    Attributes
    ----------
    figure, quantity, prediction, source, note
        Copied to the :class:`ClaimResult`.
    kind : str
        One of :data:`CLAIM_KINDS`.
    predicted : float, optional
        Predicted value (``kind="value"``) or bound (``"upper_bound"``, ``"lower_bound"``);
        unused for ``"less_than"``.
    atol, rtol : float
        Tolerance band for ``kind="value"`` (``t = atol + rtol |predicted|``).
    verified : bool
        Whether the prediction was checked against the paper text.
    source_kind, url, read_in_paper
        Provenance of the cited statement (:class:`theory.provenance.Source`), copied to the
        result; :meth:`from_bound` fills them.
    regime : str
        The condition under which the prediction is stated (e.g. ``"n >= 20 d"``); a measurement
        taken outside it is judged ``"outside regime"`` (:meth:`evaluate` ``in_regime``).
    """

    figure: str
    quantity: str
    prediction: str
    kind: str
    predicted: float | None = None
    atol: float = 0.0
    rtol: float = 0.0
    source: str = ""
    verified: bool = False
    note: str = ""
    source_kind: str = ""
    url: str = ""
    read_in_paper: bool = False
    regime: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"kind must be one of {CLAIM_KINDS}, got {self.kind!r}")
        if self.kind != "less_than" and self.predicted is None:
            raise ValueError(f"predicted must be a finite number for kind={self.kind!r}")
        if self.atol < 0 or self.rtol < 0:
            raise ValueError("atol and rtol must be in [0, inf)")

    @classmethod
    def from_bound(cls, bound_fn: Callable, **kwargs: Any) -> Claim:
        """Build a claim whose ``source`` / ``verified`` come from a decorated bound function.

        Parameters
        ----------
        bound_fn : callable
            A :mod:`theory` function carrying a :class:`theory.provenance.Source`.
        **kwargs
            The other :class:`Claim` fields. A ``note`` is prefixed with the source's caveat.
        """
        return cls.from_source(source_of(bound_fn), **kwargs)

    @classmethod
    def from_source(cls, src: Source, **kwargs: Any) -> Claim:
        """Build a claim citing a :class:`theory.provenance.Source` directly (a statement no
        function computes, e.g. a theorem's direction; see :func:`theory.provenance.register`).

        Parameters
        ----------
        src : Source
        **kwargs
            The other :class:`Claim` fields. A ``note`` is prefixed with the source's caveat.
        """
        if not isinstance(src, Source):
            raise TypeError(f"src must be a Source, got {type(src).__name__}")
        note = kwargs.pop("note", "")
        joined = "; ".join(s for s in (note, src.note) if s)
        return cls(source=src.cite(), verified=src.verified, note=joined, source_kind=src.kind,
                   url=src.url, read_in_paper=src.read_in_paper, **kwargs)

    def verdict(self, ci_low: Any, ci_high: Any) -> str:
        """Apply the claim's decision rule to a confidence interval."""
        if self.kind == "value":
            return verdict_value(self.predicted, ci_low, ci_high, atol=self.atol, rtol=self.rtol)
        if self.kind == "upper_bound":
            return verdict_upper_bound(ci_low, ci_high, self.predicted)
        if self.kind == "lower_bound":
            return verdict_lower_bound(ci_low, ci_high, self.predicted)
        return verdict_less_than(ci_low, ci_high)

    def evaluate(
        self, measured: Any, ci_low: Any, ci_high: Any, *, note: str | None = None,
        in_regime: bool = True,
    ) -> ClaimResult:
        """Judge a measurement and return the table row.

        Parameters
        ----------
        measured : float
            Point estimate (for ``"less_than"``: the paired difference ``A - B``).
        ci_low, ci_high : float
            Its confidence interval (NaN -> ``"inconclusive"``).
        note : str, optional
            Extra note appended to the claim's note.
        in_regime : bool, default True
            Whether the measurement was taken inside the claim's ``regime``. ``False`` gives the
            verdict ``"outside regime"`` (the plain rule's verdict goes into the note).
        """
        if not isinstance(in_regime, bool):
            raise TypeError(f"in_regime must be a bool, got {in_regime!r}")
        verdict = self.verdict(ci_low, ci_high)
        if not in_regime:
            note = "; ".join(s for s in (note or "", f"outside its regime ({self.regime}); "
                                         f"the rule alone: {verdict}") if s)
            verdict = OUTSIDE_REGIME
        full_note = "; ".join(s for s in (self.note, note or "") if s)
        return ClaimResult(
            figure=self.figure,
            quantity=self.quantity,
            prediction=self.prediction,
            measured=measured,
            ci_low=ci_low,
            ci_high=ci_high,
            verdict=verdict,
            source=self.source,
            verified=self.verified,
            note=full_note,
            source_kind=self.source_kind,
            url=self.url,
            read_in_paper=self.read_in_paper,
            regime=self.regime,
        )

    def evaluate_fit(self, fit: SlopeFit, *, note: str | None = None,
                     in_regime: bool = True) -> ClaimResult:
        """Judge a :class:`theory.fitting.SlopeFit` (slope and its CI); records seeds and method."""
        extra = (
            f"{fit.method} {fit.level:.0%} CI, {fit.n_seeds} seeds, {fit.n_points} points, "
            f"aggregate={fit.aggregate}"
        )
        joined = "; ".join(s for s in (extra, note or "") if s)
        return self.evaluate(fit.slope, fit.ci_low, fit.ci_high, note=joined, in_regime=in_regime)

    def evaluate_slope(self, x: Any, y_by_seed: Any, *, inside: Any = None,
                       min_points: int = MIN_REGIME_POINTS, seed: int = 0,
                       note: str | None = None) -> ClaimResult:
        """Fit the log-log slope on the grid points inside the claim's regime and judge it.

        With at least ``min_points`` points inside, the slope is fitted on those alone (the
        note says which); with fewer, it is fitted on the whole grid and judged
        ``"outside regime"`` (the plain rule's verdict in the note).

        Parameters
        ----------
        x : array_like, shape (n_points,)
            The grid (:func:`theory.fitting.fit_loglog_slope`).
        y_by_seed : array_like, shape (n_seeds, n_points)
            Measurements, one row per seed.
        inside : array_like of bool, shape (n_points,), optional
            Whether each grid point satisfies ``regime`` (default: all).
        min_points : int
            Fewest points inside for a fit inside the regime, >= 2.
        seed : int
            Seed of the bootstrap.
        note : str, optional
            Appended to the note.
        """
        x = np.asarray(x, dtype=float)
        Y = np.asarray(y_by_seed, dtype=float)
        mask = np.ones(x.shape, bool) if inside is None else np.asarray(inside, dtype=bool)
        if mask.shape != x.shape:
            raise ValueError(f"inside must have the grid's shape {x.shape}; got {mask.shape}")
        if int(min_points) < 2:
            raise ValueError(f"min_points must be an integer >= 2; got {min_points}")
        m, total = int(mask.sum()), mask.size
        vals = np.unique(x[mask])
        kept = (", ".join(f"{v:g}" for v in vals) if vals.size <= 8
                else f"{vals[0]:g} to {vals[-1]:g}, {vals.size} values")
        if m >= int(min_points):
            where = (f"fitted on the {m} of {total} grid points inside its regime ({kept})"
                     if m < total else f"all {total} grid points inside its regime")
            fit, in_regime = fit_loglog_slope(x[mask], Y[:, mask], seed=seed), True
        else:
            where = (f"only {m} of {total} grid points inside its regime"
                     + (f" ({kept})" if m else "") + f", fewer than {int(min_points)}: "
                     f"fitted on all")
            fit, in_regime = fit_loglog_slope(x, Y, seed=seed), False
        joined = "; ".join(s for s in (where, note or "") if s)
        return self.evaluate_fit(fit, note=joined, in_regime=in_regime)


def claims_table(results: Iterable[ClaimResult]) -> pd.DataFrame:
    """Stack claim results into a DataFrame with columns :data:`COLUMNS` (in that order).

    Parameters
    ----------
    results : iterable of ClaimResult

    Returns
    -------
    pandas.DataFrame
    """
    rows = []
    for i, r in enumerate(results):
        if not isinstance(r, ClaimResult):
            raise TypeError(f"results[{i}] must be a ClaimResult, got {type(r).__name__}")
        rows.append(asdict(r))
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    return df.astype({"measured": float, "ci_low": float, "ci_high": float, "verified": bool,
                      "read_in_paper": bool})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return format(value, ".4g")
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        return _cell(value.item())
    text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def to_markdown(df: pd.DataFrame) -> str:
    """Render a DataFrame as a GitHub-flavoured markdown table (no ``tabulate`` needed).

    Floats use 4 significant digits, NaN is an empty cell, booleans are ``yes``/``no``, ``|`` is
    escaped and newlines become spaces; numeric columns are right-aligned.

    Parameters
    ----------
    df : pandas.DataFrame

    Returns
    -------
    str
        The table, ending with a newline.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas.DataFrame, got {type(df).__name__}")
    cols = [str(c) for c in df.columns]
    header = "| " + " | ".join(_cell(c) for c in cols) + " |"
    aligns = []
    for c in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        aligns.append("---:" if numeric else "---")
    sep = "| " + " | ".join(aligns) + " |"
    lines = [header, sep]
    for row in df.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_theory_checks(results: Iterable[ClaimResult], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``theory_checks.csv`` and ``theory_checks.md`` into ``out_dir``.

    Parameters
    ----------
    results : iterable of ClaimResult
    out_dir : str or Path
        Existing or new directory.

    Returns
    -------
    (csv_path, md_path)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = claims_table(results)
    csv_path, md_path = out / "theory_checks.csv", out / "theory_checks.md"
    df.to_csv(csv_path, index=False)
    md_path.write_text(to_markdown(df), encoding="utf-8")
    return csv_path, md_path

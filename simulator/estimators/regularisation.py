r"""Choosing the ridge ``lam`` of a Bradley–Terry fit: a scale-invariant rule and K-fold CV.

Every BT estimator here minimises a *sum* of negative log-likelihoods plus ``lam / 2 ||theta||^2``
(:mod:`simulator.estimators.bt`). A fixed number ``lam`` means different things on different data:

* **Feature scale.** Fitting ``c X`` instead of ``X`` gives ``theta / c`` only when ``lam`` is
  replaced by ``c^2 lam`` (substitute ``theta' = theta / c`` in the objective). A ridge that is a
  fixed multiple of the mean squared feature entry ``s^2 = mean(X_ij^2)`` is therefore
  scale-invariant: :func:`auto_lam` (``lam = AUTO_C * s^2``, ``lam="auto"`` of the estimators).
* **Comparisons per unit.** The curvature of the summed loss at ``theta = 0`` is
  ``X^T X / 4``, about ``n s^2 / 4`` per direction, so the same ``lam`` shrinks a 20-comparison
  group far more than a 20,000-comparison one; and with few comparisons in many dimensions the
  unpenalised MLE does not exist (separable data), so ``lam`` decides the answer. No fixed
  rule fits every regime: :func:`cv_lam` chooses ``lam`` by held-out BT log-likelihood over a
  grid (``lam="cv"``), and :func:`default_lam_grid` scales that grid to the data.

The grid (:func:`lam_grid`): ``n_grid`` log-spaced values of ``lam / s^2`` from ``LOW = 1e-4`` to
``HIGH * n_u`` (``HIGH = 10``, ``n_u`` the comparisons of the unit being fitted), i.e.
``lam = c * s^2 * n_u^a`` with the exponent ``a`` going from 0 at the bottom of the grid to 1 at
its top. Why these ends:

* bottom, ``a = 0``: in the units ``phi = s theta`` the ridge is a Gaussian prior of precision
  ``lam / s^2`` on ``phi``, and the MAP (Bayes) ridge of a prior ``phi ~ N(0, tau^2 I)`` is
  ``lam / s^2 = 1 / tau^2``, independent of ``n``. ``1e-4`` (a prior scale ``tau = 100`` per
  coordinate of ``s theta``, far above any planted signal) is the near-MLE end and equals
  ``"auto"``, so CV can always fall back to it;
* top, ``a = 1``: ``10 n_u s^2`` is 40x the loss curvature ``n_u s^2 / 4``, where a direction of
  average curvature is shrunk to about 1/41 of its unpenalised step: the "no signal" end, which CV must reach on
  pure-noise labels.

``n_grid = 16`` puts adjacent values a factor 2.6 (``n_u = 20``) to 4.2 (``n_u = 20,000``) apart.
Measured (SeparateMLE, planted ``Population.shared`` data): adjacent values' held-out
log-likelihoods differ by at most 2e-3 nats per comparison near the optimum with thousands of
comparisons per group (d = 32), and by at most 0.03 with 20 (d = 16, feature scale 10), below
the CV estimate's own standard error there (about 0.1 with 20 held-out comparisons): a finer
grid would not choose better.

:func:`cv_lam` is model-agnostic: it assigns seeded, stratified folds, calls a caller's
``fit_score(train_rows, test_rows, lam)`` for every fold and grid value, and picks the grid value
with the largest total held-out log-likelihood, one per unit when the score is per unit (the
per-group ``lam`` of :class:`~.mle.SeparateMLE` and :class:`~.oracle.OracleB`). It can serve any
estimator with any grid (e.g. SharedLoRA's nuclear-norm weight over its ``auto_lam * CV_GRID``,
passing its unit ids as ``data`` and returning per-unit or total held-out log-likelihoods).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import PreferenceData
from ..seeding import as_seed_sequence
from ..validation import InvalidParameterError

__all__ = ["LAM_MODES", "AUTO_C", "CVResult", "mean_sq_feature", "auto_lam", "lam_grid",
           "default_lam_grid", "unit_mean_sq", "kfold_assign", "cv_lam", "check_lam", "resolve_bt_lam",
           "NUCLEAR_C", "nuclear_lam"]

#: String values ``lam`` may take besides a number.
LAM_MODES = ("auto", "cv")
#: ``lam="auto"``: ``lam = AUTO_C * s^2``; 1e-4 is the numeric default at ``s = 1``, so "auto"
#: equals the default on unit-scale features and follows the features otherwise.
AUTO_C = 1e-4
#: Ends of :func:`lam_grid` in units of ``s^2``: ``LOW`` and ``HIGH * n_u``.
LOW, HIGH = 1e-4, 10.0
N_GRID = 16


def check_lam(lam, *, allow_zero: bool = True, name: str = "lam"):
    """Validate a ridge argument: a finite number (``>= 0``, or ``> 0``) or one of :data:`LAM_MODES`.

    Parameters
    ----------
    lam : float or {"auto", "cv"}
    allow_zero : bool, default True
        Whether ``lam = 0`` (the unpenalised MLE) is allowed.
    name : str
        Parameter name used in the error message.

    Returns
    -------
    float or str
        ``float(lam)`` or the mode string.

    Raises
    ------
    ValueError
        Anything else; the message names the parameter and the allowed values.
    """
    bound = ">= 0" if allow_zero else "> 0"
    allowed = f"a finite number {bound} or one of {LAM_MODES}"
    if isinstance(lam, str):
        if lam not in LAM_MODES:
            raise InvalidParameterError(f"{name} must be {allowed}; got {lam!r}")
        return lam
    if isinstance(lam, (bool, np.bool_)) or not isinstance(lam, (int, float, np.integer,
                                                                 np.floating)):
        raise InvalidParameterError(f"{name} must be {allowed}; got {lam!r}")
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0 or (lam == 0 and not allow_zero):
        raise InvalidParameterError(f"{name} must be {allowed}; got {lam!r}")
    return lam


def mean_sq_feature(X) -> float:
    """``s^2``, the mean squared entry of the design ``X`` (n, d).

    Raises
    ------
    ValueError
        ``X`` is empty or all zeros (no scale to set ``lam`` by).
    """
    X = np.asarray(X, dtype=np.float64)
    s2 = float(np.mean(X * X)) if X.size else 0.0
    if not s2 > 0:
        raise ValueError("a data-scaled lam ('auto' or 'cv') needs features with a non-zero "
                         "scale; X is empty or all zeros")
    return s2


def unit_mean_sq(X, rows, *, fallback=None) -> np.ndarray:
    """``s^2`` of each unit's rows of ``X`` (array (len(rows),)).

    A unit with no rows or all-zero features gets ``fallback`` (default: ``s^2`` of all of
    ``X``); its objective does not depend on ``theta`` apart from the ridge, so any positive
    ``lam`` gives ``theta = 0`` there.
    """
    X = np.asarray(X, dtype=np.float64)
    s2 = np.array([float(np.mean(X[r] * X[r])) if r.size else 0.0 for r in rows])
    if np.any(s2 <= 0):
        s2 = np.where(s2 > 0, s2, mean_sq_feature(X) if fallback is None else fallback)
    return s2


def auto_lam(X, c: float = AUTO_C) -> float:
    """``lam="auto"``: ``c * s^2`` with ``s^2`` the mean squared entry of ``X``.

    Scale-invariant: fitting ``a X`` with ``auto_lam(a X)`` gives exactly ``theta / a`` (module
    docstring). It does *not* adapt to the number of comparisons; use :func:`cv_lam` for that.

    Parameters
    ----------
    X : array (n, d)
        The design of the problem being fitted.
    c : float, default :data:`AUTO_C`
        Multiple of ``s^2`` (> 0).

    Returns
    -------
    float
    """
    if not (np.isfinite(c) and c > 0):
        raise ValueError(f"c must be a finite number > 0; got {c}")
    return c * mean_sq_feature(X)


def lam_grid(s2, n_per_unit, *, n_grid: int = N_GRID, low: float = LOW,
             high: float = HIGH) -> np.ndarray:
    """Log-spaced ridge grid ``s2_u * geomspace(low, high * n_u, n_grid)`` (module docstring).

    Parameters
    ----------
    s2 : float or array (m,)
        Mean squared feature entry (of all data, or of each unit's rows); > 0.
    n_per_unit : float or array (m,)
        Comparisons (or summed sample weights) of the problem(s) being fitted; >= 1.
    n_grid : int, default 16
        Number of grid values, >= 2.
    low, high : float
        Ends in units of ``s2``: ``low`` and ``high * n_u``; ``0 < low < high * n_u``.

    Returns
    -------
    array (n_grid,) when ``s2`` and ``n_per_unit`` are scalars, else (n_grid, m); increasing
    along axis 0.
    """
    if int(n_grid) != n_grid or n_grid < 2:
        raise ValueError(f"n_grid must be an integer >= 2; got {n_grid}")
    scalar = np.ndim(s2) == 0 and np.ndim(n_per_unit) == 0
    s2 = np.atleast_1d(np.asarray(s2, dtype=np.float64))
    n_u = np.atleast_1d(np.asarray(n_per_unit, dtype=np.float64))
    if not np.all(np.isfinite(s2) & (s2 > 0)):
        raise ValueError("s2 must be finite and > 0")
    if not np.all(np.isfinite(n_u) & (n_u >= 1)):
        raise ValueError("n_per_unit must be finite and >= 1")
    if not (np.isfinite(low) and low > 0 and np.isfinite(high) and np.all(high * n_u > low)):
        raise ValueError(f"need 0 < low < high * n_per_unit; got low = {low}, high = {high}")
    t = np.linspace(0.0, 1.0, int(n_grid))[:, None]
    grid = s2[None, :] * np.exp(np.log(low) + t * (np.log(high * n_u) - np.log(low))[None, :])
    return grid[:, 0] if scalar else grid


def default_lam_grid(data, *, by: str | None = None, n_grid: int = N_GRID,
                     sample_weight=None, X=None) -> np.ndarray:
    """:func:`lam_grid` scaled to ``data``: one grid for a pooled fit, or one column per unit.

    Parameters
    ----------
    data : PreferenceData
    by : {None, "group", "user"}
        ``None``: one grid from all rows (``n_u = n``). ``"group"`` / ``"user"``: one column per
        group / user, from that unit's rows (its own ``s^2``, or the global one where its
        features are all zero; ``n_u`` at least 1).
    n_grid : int, default 16
    sample_weight : array (n,), optional
        ``n_u`` becomes the unit's summed weight (the loss curvature scales with it).
    X : array (n, m), optional
        The design actually fitted when it is not ``data.X`` (e.g. ``data.X @ B`` for
        :class:`~.oracle.OracleB`); ``s^2`` is taken from it.

    Returns
    -------
    array (n_grid,) or (n_grid, n_units)
    """
    if not isinstance(data, PreferenceData):
        raise TypeError(f"data must be a PreferenceData; got {type(data).__name__}")
    X = data.X if X is None else np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != data.n:
        raise ValueError(f"X must have shape ({data.n}, m); got {X.shape}")
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    s2_all = mean_sq_feature(X)
    if by is None:
        n = data.n if w is None else float(w.sum())
        return lam_grid(s2_all, max(n, 1.0), n_grid=n_grid)
    rows = data.group_rows(by)  # validates by
    s2 = unit_mean_sq(X, rows, fallback=s2_all)
    n_u = np.array([r.size if w is None else float(w[r].sum()) for r in rows], dtype=float)
    return lam_grid(s2, np.maximum(n_u, 1.0), n_grid=n_grid)


def _strata_rows(strata, by):
    if isinstance(strata, PreferenceData):
        if by is None:
            return [np.arange(strata.n)], strata.n
        return strata.group_rows(by), strata.n
    ids = np.asarray(strata)
    if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer) \
            or ids.min() < 0:
        raise ValueError("strata must be a PreferenceData or a non-empty 1-D array of "
                         "non-negative integer ids")
    if by is None:
        return [np.arange(ids.size)], ids.size
    order = np.argsort(ids, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(ids))])
    return [order[bounds[u]:bounds[u + 1]] for u in range(bounds.size - 1)], ids.size


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix64(z):
    """splitmix64's finaliser (a bijection of uint64; arrays wrap modulo 2^64)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _row_keys(X, y, rng):
    """A seeded 64-bit hash of each row's content ``(X_i, y_i)``: a random order of the rows
    that does not depend on the order they are stored in."""
    bits = np.ascontiguousarray(X, dtype=np.float64).view(np.uint64)
    h = np.full(bits.shape[0], rng.integers(0, 2**63, dtype=np.uint64), dtype=np.uint64)
    for j in range(bits.shape[1]):
        h = _mix64(h ^ bits[:, j])
    return _mix64(h ^ np.asarray(y, dtype=np.uint64))


def kfold_assign(strata, n_folds: int = 5, *, seed, by: str | None = "group",
                 singletons: str = "train") -> np.ndarray:
    """Seeded fold ids, stratified: each stratum's rows are spread evenly over the folds.

    Each stratum with ``n_s >= 2`` rows is put in a random order and dealt round-robin into the
    folds from a random starting fold, so every fold holds ``floor(n_s / K)`` or
    ``ceil(n_s / K)`` of its rows and, when ``n_s < K``, its rows sit in different folds (every
    training set keeps at least ``n_s - 1 >= 1`` of them). A stratum with one row is never held
    out (fold ``-1``), so per-unit fits always have training data; with
    ``singletons="pool"`` (for fits that share parameters across strata, e.g. a pooled fit on
    one comparison per user) those rows form one more stratum instead.

    For a :class:`~simulator.data.PreferenceData` the random order is a seeded hash of each
    row's content ``(X_i, y_i)``, so permuting the rows permutes the fold ids with them (the
    CV choice, and so a ``lam="cv"`` fit, does not depend on the row order; identical rows are
    interchangeable). For bare stratum ids it is a seeded permutation of the row positions.

    Parameters
    ----------
    strata : PreferenceData or array (n,) of int
        The data (strata from ``by``) or the stratum ids themselves.
    n_folds : int, default 5
        ``K >= 2``.
    seed : int, SeedSequence or Generator
        All randomness (through :func:`simulator.seeding.as_seed_sequence`).
    by : {"group", "user", None}
        Stratify by group or user (PreferenceData), by the given ids (array; any non-None
        value), or not at all (``None``: one stratum).
    singletons : {"train", "pool"}
        What happens to strata with one row (above).

    Returns
    -------
    array (n,) of int
        Fold of each row in ``[0, K)``, or -1 (always trained on).
    """
    if singletons not in ("train", "pool"):
        raise ValueError(f"singletons must be 'train' or 'pool'; got {singletons!r}")
    if (isinstance(n_folds, (bool, np.bool_)) or not isinstance(n_folds, (int, np.integer))
            or n_folds < 2):
        raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
    K = int(n_folds)
    rows, n = _strata_rows(strata, by)
    rng = np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))
    keys = _row_keys(strata.X, strata.y, rng) if isinstance(strata, PreferenceData) else None
    folds = np.full(n, -1, dtype=np.int64)
    if singletons == "pool":
        single = [r for r in rows if r.size == 1]
        rows = [r for r in rows if r.size != 1]
        if single:
            rows.append(np.sort(np.concatenate(single)))
    for r in rows:
        if r.size < 2:
            continue
        start = int(rng.integers(K))
        perm = rng.permutation(r) if keys is None else r[np.argsort(keys[r], kind="stable")]
        folds[perm] = (start + np.arange(r.size)) % K
    return folds


@dataclass(frozen=True, eq=False)
class CVResult:
    """The outcome of :func:`cv_lam`.

    Attributes
    ----------
    lam : float or array (m,)
        The chosen ridge (one per unit when the scores were per unit).
    best_index : int or array (m,) of int
        Its row in ``grid``.
    grid : array (G,) or (G, m)
        The candidates (increasing along axis 0).
    scores : array (G,) or (G, m)
        Mean held-out BT log-likelihood per held-out comparison (NaN for a unit never held out).
    loglik : array like ``scores``
        The summed held-out log-likelihood over all folds (what the choice maximises).
    n_heldout : int or array (m,) of int
        Held-out comparisons (per unit for per-unit scores).
    folds : array (n,) of int
        Fold of each row (-1: always in training).
    n_folds : int
    """

    lam: float | np.ndarray
    best_index: int | np.ndarray
    grid: np.ndarray
    scores: np.ndarray
    loglik: np.ndarray
    n_heldout: int | np.ndarray
    folds: np.ndarray
    n_folds: int

    def table(self):
        """The score table as a tidy pandas DataFrame: ``unit, lam, heldout_loglik_mean,
        heldout_loglik_sum, chosen`` (``unit`` is -1 for one shared choice)."""
        import pandas as pd

        grid = self.grid if self.grid.ndim == 2 else None
        sc = self.scores if self.scores.ndim == 2 else self.scores[:, None]
        ll = self.loglik if self.loglik.ndim == 2 else self.loglik[:, None]
        best = np.atleast_1d(self.best_index)
        per_unit = self.scores.ndim == 2
        out = []
        for u in range(sc.shape[1]):
            for j in range(sc.shape[0]):
                lam = self.grid[j] if grid is None else grid[j, u]
                out.append({"unit": u if per_unit else -1, "lam": float(lam),
                            "heldout_loglik_mean": float(sc[j, u]),
                            "heldout_loglik_sum": float(ll[j, u]),
                            "chosen": bool(j == best[u])})
        return pd.DataFrame(out)


def _check_grid(grid):
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim not in (1, 2) or grid.shape[0] < 1:
        raise ValueError(f"grid must be a non-empty array (G,) or (G, m); got shape {grid.shape}")
    if not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise ValueError("grid values must be finite and >= 0")
    if grid.shape[0] > 1 and not np.all(np.diff(grid, axis=0) > 0):
        raise ValueError("grid must be strictly increasing along its first axis")
    return grid


def cv_lam(fit_score, data, grid, *, n_folds: int = 5, seed, by: str | None = "group",
           singletons: str = "train", rtol: float = 1e-10) -> CVResult:
    """Choose ``lam`` by seeded, stratified K-fold held-out BT log-likelihood.

    For each fold ``k`` (in order) and each grid row ``j`` (in increasing order, so a caller may
    warm-start from the previous value), calls ``fit_score(train_rows, test_rows, grid[j])`` and
    sums what it returns over folds. The chosen value maximises that sum; among values within
    ``rtol * max(1, |best|)`` of the best (flat curves), the largest ``lam`` wins.

    Parameters
    ----------
    fit_score : callable
        ``fit_score(train_rows, test_rows, lam) -> float or array (m,)``: fit on rows
        ``train_rows`` (int array) with ridge ``lam`` and return the *summed* BT log-likelihood
        of rows ``test_rows``. ``lam`` is ``grid[j]``: a float for a 1-D grid, an (m,) array
        (one ridge per unit) for a 2-D grid. A vector score has one entry per stratum
        (``m`` = number of groups / users / ids), and the choice is then made per unit.
    data : PreferenceData or array (n,) of int
        The data (strata from ``by``), or the stratum ids (for estimators with their own units).
    grid : array (G,) or (G, m)
        Candidates, strictly increasing along axis 0 (e.g. :func:`default_lam_grid`).
    n_folds : int, default 5
    seed : int, SeedSequence or Generator
        Fold assignment (:func:`kfold_assign`); the result is a function of the seed.
    by : {"group", "user", None}
        Strata of the folds; per-unit scores are per stratum.
    singletons : {"train", "pool"}
        Strata with one row: always trained on, or pooled into one more stratum
        (:func:`kfold_assign`; "pool" only makes sense for a scalar score).
    rtol : float, default 1e-10
        Tie tolerance (above).

    Returns
    -------
    CVResult

    Raises
    ------
    ValueError
        No stratum has two rows (nothing can be held out), a bad grid, or ``fit_score``
        returning a value of the wrong shape or a non-finite one.
    """
    grid = _check_grid(grid)
    folds = kfold_assign(data, n_folds, seed=seed, by=by, singletons=singletons)
    if not np.any(folds >= 0):
        raise ValueError("lam='cv' needs at least one group (stratum) with 2 or more comparisons "
                         "to hold one out")
    rows, _ = _strata_rows(data, by)
    G = grid.shape[0]
    total = None
    for k in range(int(n_folds)):
        te = np.flatnonzero(folds == k)
        if te.size == 0:
            continue
        tr = np.flatnonzero(folds != k)
        for j in range(G):
            s = np.asarray(fit_score(tr, te, grid[j] if grid.ndim == 1 else grid[j].copy()),
                           dtype=np.float64)
            if total is None:
                if s.ndim not in (0, 1) or (s.ndim == 1 and s.size != len(rows)):
                    raise ValueError(f"fit_score must return a float or one value per stratum "
                                     f"({len(rows)}); got shape {s.shape}")
                if grid.ndim == 2 and s.ndim == 1 and grid.shape[1] != s.size:
                    raise ValueError(f"a per-unit grid needs {s.size} columns; got "
                                     f"{grid.shape[1]}")
                total = np.zeros((G,) + s.shape)
            if s.shape != total.shape[1:] or not np.all(np.isfinite(s)):
                raise ValueError(f"fit_score returned {s!r} at lam = {grid[j]!r}; expected a "
                                 f"finite value of shape {total.shape[1:]}")
            total[j] += s
    held = folds >= 0
    if total.ndim == 1:
        n_held = int(held.sum())
        scores = total / n_held
        best_val = total.max()
        ok = np.flatnonzero(total >= best_val - rtol * max(1.0, abs(best_val)))
        best = int(ok.max())
        lam = float(grid[best]) if grid.ndim == 1 else grid[best].copy()
        return CVResult(lam=lam, best_index=best, grid=grid, scores=scores, loglik=total,
                        n_heldout=n_held, folds=folds, n_folds=int(n_folds))
    n_held = np.array([int(np.count_nonzero(held[r])) for r in rows], dtype=np.int64)
    m = total.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(n_held > 0, total / np.maximum(n_held, 1), np.nan)
    best = np.empty(m, dtype=np.int64)
    for u in range(m):
        if n_held[u] == 0:  # never held out (one comparison): the most regularised candidate
            best[u] = G - 1
            continue
        col = total[:, u]
        best_val = col.max()
        best[u] = np.flatnonzero(col >= best_val - rtol * max(1.0, abs(best_val))).max()
    g2 = grid if grid.ndim == 2 else np.repeat(grid[:, None], m, axis=1)
    lam = g2[best, np.arange(m)]
    return CVResult(lam=lam, best_index=best, grid=grid, scores=scores, loglik=total,
                    n_heldout=n_held, folds=folds, n_folds=int(n_folds))


def _heldout_loglik(X, y, w, theta):
    t = (2.0 * y - 1.0) * (X @ theta)
    ll = -np.logaddexp(0.0, -t)
    return ll if w is None else w * ll


def resolve_bt_lam(lam, data, fit, *, per_unit: bool, X=None, sample_weight=None,
                   n_folds: int = 5, seed=0, by: str = "group"):
    """The ridge(s) a BT estimator fits with, from its ``lam`` argument.

    The shared implementation of ``lam`` = number / ``"auto"`` / ``"cv"`` for
    :class:`~.mle.PooledMLE` (``per_unit=False``), :class:`~.mle.SeparateMLE` and
    :class:`~.oracle.OracleB` (``per_unit=True``: one ridge per group, each group's problem on
    its own rows).

    Parameters
    ----------
    lam : float or {"auto", "cv"}
        Validated by :func:`check_lam`.
    data : PreferenceData
    fit : callable
        ``fit(X_rows, y_rows, w_rows, lam, theta_init) -> theta``: one BT fit (``w_rows`` may be
        None; ``theta_init`` None or a warm start). Used only for ``"cv"``; warnings it raises
        inside the CV fits are suppressed (the final fit at the chosen ``lam`` warns as usual).
    per_unit : bool
        One ridge per unit (``by``) or one for all rows.
    X : array (n, m), optional
        The design fitted (default ``data.X``).
    sample_weight : array (n,), optional
        Weights of the fit; the held-out log-likelihood is weighted by them too.
    n_folds, seed
        Of :func:`cv_lam`.
    by : {"group", "user"}
        Units (``per_unit=True``) and CV strata.

    Returns
    -------
    lam : float or array (U,)
    cv : CVResult or None
        Only for ``"cv"``.
    """
    import warnings

    lam = check_lam(lam)
    X = data.X if X is None else np.asarray(X, dtype=np.float64)
    y = data.y
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    rows = data.group_rows(by) if per_unit else None
    if not isinstance(lam, str):
        return (np.full(len(rows), lam) if per_unit else lam), None
    if lam == "auto":
        if per_unit:
            return AUTO_C * unit_mean_sq(X, rows), None
        return auto_lam(X), None
    grid = default_lam_grid(data, by=by if per_unit else None, sample_weight=w, X=X)
    state = {"tr": None, "theta": None}
    n, m = X.shape

    def _sub(r):
        return X[r], y[r], None if w is None else w[r]

    if not per_unit:
        def fit_score(tr, te, lam_j):
            warm = state["theta"] if state["tr"] is tr else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theta = fit(*_sub(tr), lam_j, warm)
            state["tr"], state["theta"] = tr, theta
            return float(np.sum(_heldout_loglik(*_sub(te), theta)))
    else:
        ids = data.group if by == "group" else data.user
        U = len(rows)

        def fit_score(tr, te, lam_j):
            if state["tr"] is not tr:
                mask = np.zeros(n, dtype=bool)
                mask[tr] = True
                state["rows"] = [r[mask[r]] for r in rows]
                state["theta"] = [None] * U
                state["tr"] = tr
            thetas = np.zeros((U, m))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for u, r in enumerate(state["rows"]):
                    if r.size:
                        thetas[u] = fit(*_sub(r), float(lam_j[u]), state["theta"][u])
                        state["theta"][u] = thetas[u]
            t = (2.0 * y[te] - 1.0) * np.einsum("ij,ij->i", X[te], thetas[ids[te]])
            ll = -np.logaddexp(0.0, -t)
            if w is not None:
                ll = w[te] * ll
            return np.bincount(ids[te], weights=ll, minlength=U)

    res = cv_lam(fit_score, data, grid, n_folds=n_folds, seed=seed, by=by,
                 singletons="train" if per_unit else "pool")
    return res.lam, res


#: Constant of :func:`nuclear_lam` (checked regimes: :func:`simulator.estimators.lowrank.auto_lam`).
NUCLEAR_C = 0.75


def nuclear_lam(X, n_units) -> float:
    r"""Data-scaled weight of a nuclear-norm penalty on a d x N parameter matrix (one column per
    unit), ``NUCLEAR_C * s * (sqrt(d) + sqrt(N))`` with ``s`` the root-mean-square entry of X.

    ``s (sqrt(d) + sqrt(N))`` is the scale of the operator norm of a d x N matrix of ``s``-sized
    independent entries, the form of the BT loss's per-unit score matrix: the penalty must grow
    with it or it vanishes against the loss as units are added. It is the ``lam="auto"`` of
    SharedLoRA (``lam ||Delta||_*``) and of SharedRep (``lam/2 (||B||^2 + ||W||^2)``, which is
    ``lam ||B W||_*`` at the optimum for free weights). The regimes where the constant was
    checked are listed in :func:`simulator.estimators.lowrank.auto_lam` and
    :class:`simulator.estimators.sharedrep.SharedRep`.
    """
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    s = float(np.sqrt(np.mean(X * X))) if X.size else 0.0
    if not s > 0:
        raise ValueError("lam='auto' needs features with a non-zero scale (X is all zeros)")
    return NUCLEAR_C * s * (np.sqrt(d) + np.sqrt(n_units))

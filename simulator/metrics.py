r"""Estimation metrics: parameter errors, subspace distances, held-out fit, clustering agreement.

Symbols as in the papers: ``theta`` (U, d) true group parameters, ``theta_hat`` their estimate,
``B`` (d, k) a trait basis, ``Sigma_D = (1/n) sum_i x_i x_i^T`` the design covariance of the
feature differences (Zhu, Jordan & Jiao 2023, Lemma 3.1 measures the error in the
``Sigma_D + lambda I`` norm).

Policy-level metrics (utilities, gaps, win rates) live in :mod:`simulator.fairness`.
"""

from __future__ import annotations

import numpy as np

from .validation import InvalidParameterError, check_array, check_int, check_real

__all__ = [
    "adjusted_rand_index",
    "contingency_table",
    "empirical_sigma",
    "heldout_metrics",
    "matched_param_error",
    "param_error",
    "principal_angles",
    "purity",
    "sigma_norm_error",
    "sin_theta",
    "span_decomposition",
]


def _as_2d(theta, name):
    theta = check_array(theta, name, ndim=(1, 2))
    if theta.ndim == 1:
        theta = theta[None, :]
    if theta.shape[1] < 1:
        raise InvalidParameterError(f"{name} must have shape (U, d) or (d,) with d >= 1; got "
                                    f"{theta.shape}")
    return theta


def _pair(theta_hat, theta):
    a, b = _as_2d(theta_hat, "theta_hat"), _as_2d(theta, "theta")
    if a.shape != b.shape:
        raise InvalidParameterError(f"theta_hat {a.shape} and theta {b.shape} must have the "
                                    "same shape")
    return a, b


def _check_data(data):
    from .data import PreferenceData

    if not isinstance(data, PreferenceData):
        raise InvalidParameterError(f"data must be a PreferenceData; got {type(data).__name__}")
    return data


def param_error(theta_hat, theta) -> np.ndarray:
    """Per-group l2 error ``||theta_hat_u - theta_u||_2``, shape (U,)."""
    a, b = _pair(theta_hat, theta)
    return np.linalg.norm(a - b, axis=1)


_MAX_ENUMERATED = 7  # up to 7! = 5040 matchings are enumerated; more groups use the Hungarian


def matched_param_error(theta_hat, theta) -> np.ndarray:
    """Per-group l2 error after the best matching of estimated clusters to groups, shape (U,).

    A mixture model (e.g. EM, MaxMin-RLHF Algorithm 2) learns its clusters up to a relabelling:
    the error of group u is ``||theta_hat_{sigma(u)} - theta_u||_2`` for the permutation sigma
    minimising the summed error ``sum_u ||theta_hat_{sigma(u)} - theta_u||_2`` (on ties the
    first permutation in lexicographic order, the identity first).
    """
    a, b = _pair(theta_hat, theta)
    U = a.shape[0]
    if U <= _MAX_ENUMERATED:
        import itertools

        best = None
        for perm in itertools.permutations(range(U)):
            err = np.linalg.norm(a[list(perm)] - b, axis=1)
            if best is None or err.sum() < best.sum():
                best = err
        return best
    from scipy.optimize import linear_sum_assignment

    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)  # cost[i, u]: cluster i, group u
    rows, cols = linear_sum_assignment(cost)
    perm = rows[np.argsort(cols)]
    return np.linalg.norm(a[perm] - b, axis=1)


def empirical_sigma(data, group: int | None = None) -> np.ndarray:
    """``Sigma_D = (1/n) X^T X`` over all comparisons, or over group ``group``'s only."""
    data = _check_data(data)
    if group is not None:
        group = check_int(group, "group", low=0, high=data.n_groups - 1, allow_none=True)
    X = data.X if group is None else data.X[data.group == group]
    if X.shape[0] == 0:
        raise InvalidParameterError(f"group {group} has no comparisons")
    return X.T @ X / X.shape[0]


def sigma_norm_error(theta_hat, theta, Sigma, lam: float = 0.0) -> np.ndarray:
    r"""Per-group error ``||theta_hat_u - theta_u||_{Sigma + lam I}``, shape (U,).

    ``Sigma`` is one (d, d) matrix for every group or a stack (U, d, d) (e.g. each group's own
    ``Sigma_{D_u}``).
    """
    a, b = _pair(theta_hat, theta)
    E = a - b
    U, d = E.shape
    S = check_array(Sigma, "Sigma")
    if S.shape == (d, d):
        S = np.broadcast_to(S, (U, d, d))
    if S.shape != (U, d, d):
        raise InvalidParameterError(f"Sigma must have shape ({d}, {d}) or ({U}, {d}, {d}); got "
                                    f"{S.shape}")
    lam = check_real(lam, "lam", low=0.0)
    q = np.einsum("ui,uij,uj->u", E, S, E) + lam * np.einsum("ui,ui->u", E, E)
    return np.sqrt(np.maximum(q, 0.0))


def _orth(B, name):
    B = check_array(B, name, ndim=(1, 2))
    if B.ndim == 1:
        B = B[:, None]
    if B.shape[0] < 1:
        raise InvalidParameterError(f"{name} must be a (d, k) matrix with d >= 1; got shape "
                                    f"{B.shape}")
    U, s, _ = np.linalg.svd(B, full_matrices=False)
    r = int(np.sum(s > 1e-12 * max(1.0, s.max() if s.size else 0.0)))
    return U[:, :r]


def principal_angles(B_hat, B) -> np.ndarray:
    """Principal angles (radians, ascending) between span(B_hat) and span(B)."""
    Q1, Q2 = _orth(B_hat, "B_hat"), _orth(B, "B")
    if Q1.shape[0] != Q2.shape[0]:
        raise InvalidParameterError(f"B_hat and B must have the same number of rows d; got "
                                    f"{Q1.shape[0]} and {Q2.shape[0]}")
    s = np.linalg.svd(Q1.T @ Q2, compute_uv=False)
    return np.arccos(np.clip(s, -1.0, 1.0))  # s descending -> angles ascending


def sin_theta(B_hat, B) -> float:
    r"""Sin-theta distance ``||(I - P_{B_hat}) Q_B||_2`` between subspaces.

    ``Q_B`` is an orthonormal basis of span(B). It is the sine of the largest principal angle
    when the dimensions agree; if ``span(B_hat)`` is smaller than ``span(B)`` it is 1. Invariant
    to any invertible change of basis of either argument (Tripuraneni et al. 2021).
    """
    Q1, Q2 = _orth(B_hat, "B_hat"), _orth(B, "B")
    if Q1.shape[0] != Q2.shape[0]:
        raise InvalidParameterError(f"B_hat and B must have the same number of rows d; got "
                                    f"{Q1.shape[0]} and {Q2.shape[0]}")
    R = Q2 - Q1 @ (Q1.T @ Q2)
    return float(min(1.0, np.linalg.norm(R, 2))) if R.size else 0.0


def span_decomposition(theta_hat, theta, B) -> dict:
    r"""Split each group's error ``e_u = theta_hat_u - theta_u`` along span(B).

    Returns ``{"inside": ||P_B e_u||, "outside": ||(I - P_B) e_u||, "total": ||e_u||}`` (arrays of
    shape (U,)); ``inside**2 + outside**2 == total**2``. With the true B, "inside" is the error a
    k-dimensional head makes and "outside" the error from a wrong representation.
    """
    a, b = _pair(theta_hat, theta)
    Q = _orth(B, "B")
    if Q.shape[0] != a.shape[1]:
        raise InvalidParameterError(f"B must have d = {a.shape[1]} rows; got {Q.shape[0]}")
    E = a - b
    inside = E @ Q @ Q.T
    return {"inside": np.linalg.norm(inside, axis=1),
            "outside": np.linalg.norm(E - inside, axis=1),
            "total": np.linalg.norm(E, axis=1)}


def heldout_metrics(theta_hat, data) -> dict:
    """Held-out mean log-loss and accuracy per group of ``data`` under ``theta_hat`` (U, d).

    Returns ``{"log_loss": (U,), "accuracy": (U,), "n": (U,)}``; groups without comparisons get
    NaN. ``theta_hat`` may also be a fitted estimator (its ``theta_`` is used). Accuracy counts a
    zero margin as half right.
    """
    theta_hat = getattr(theta_hat, "theta_", theta_hat)
    T = _as_2d(theta_hat, "theta_hat")
    data = _check_data(data)
    if T.shape[1] != data.d:
        raise InvalidParameterError(f"theta_hat has d = {T.shape[1]}, data has d = {data.d}")
    if T.shape[0] < data.n_groups:
        raise InvalidParameterError(f"theta_hat has {T.shape[0]} rows but data has "
                                    f"{data.n_groups} groups")
    z = np.einsum("ij,ij->i", data.X, T[data.group])
    t = (2.0 * data.y - 1.0) * z
    loss = np.logaddexp(0.0, -t)
    acc = np.where(t > 0, 1.0, np.where(t == 0, 0.5, 0.0))
    U = data.n_groups
    n = np.bincount(data.group, minlength=U).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ll = np.bincount(data.group, weights=loss, minlength=U) / n
        ac = np.bincount(data.group, weights=acc, minlength=U) / n
    return {"log_loss": ll, "accuracy": ac, "n": n.astype(np.int64)}


def contingency_table(pred, true) -> np.ndarray:
    """Counts ``C[i, j]`` of items with predicted label i and true label j (labels relabelled
    to 0..m-1 in sorted order)."""
    pred, true = _labels(pred, "pred"), _labels(true, "true")
    if pred.shape != true.shape:
        raise InvalidParameterError(f"pred and true must have the same length; got "
                                    f"{pred.size} and {true.size}")
    if pred.size == 0:
        raise InvalidParameterError("pred and true must not be empty")
    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(true, return_inverse=True)
    C = np.zeros((p.max() + 1, t.max() + 1), dtype=np.int64)
    np.add.at(C, (p, t), 1)
    return C


def _labels(a, name):
    """Cluster labels: a 1-D array of integers, strings or other sortable hashables (not floats
    with NaN, not complex)."""
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} must be a 1-D array of labels ({exc})") from None
    if arr.ndim > 1:
        raise InvalidParameterError(f"{name} must be a 1-D array of labels; got shape "
                                    f"{arr.shape}")
    if arr.dtype.kind == "c":
        raise InvalidParameterError(f"{name} labels must not be complex; got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} labels must be finite (no NaN/inf)")
    if arr.dtype.kind == "O":
        raise InvalidParameterError(f"{name} must be an array of integer or string labels; got "
                                    "objects")
    return arr.ravel()


def purity(pred, true) -> float:
    """Cluster purity: fraction of items whose cluster's majority true label is their own."""
    C = contingency_table(pred, true)
    return float(C.max(axis=1).sum() / C.sum())


def _comb2(x):
    x = np.asarray(x, dtype=np.float64)
    return x * (x - 1.0) / 2.0


def adjusted_rand_index(pred, true) -> float:
    r"""Adjusted Rand index (Hubert & Arabie 1985).

    ``ARI = (sum_ij C(n_ij,2) - E) / (0.5 (sum_i C(a_i,2) + sum_j C(b_j,2)) - E)`` with
    ``E = sum_i C(a_i,2) sum_j C(b_j,2) / C(n,2)``; 1 for identical partitions (up to relabelling),
    about 0 for independent ones. Two trivial partitions that agree give 1 (scikit-learn's
    convention).
    """
    C = contingency_table(pred, true)
    n = C.sum()
    sum_ij = _comb2(C).sum()
    sa = _comb2(C.sum(axis=1)).sum()
    sb = _comb2(C.sum(axis=0)).sum()
    total = _comb2(n)
    expected = sa * sb / total if total > 0 else 0.0
    max_index = 0.5 * (sa + sb)
    if max_index == expected:  # both partitions trivial (all singletons or one cluster)
        return 1.0
    return float((sum_ij - expected) / (max_index - expected))

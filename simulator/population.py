r"""Who prefers what: synthetic Bradley–Terry populations with a planted shared low-rank structure.

Group :math:`u \in [U]` has reward parameter

.. math:: \theta_u = \theta_0 + B w_u, \qquad B \in \mathbb{R}^{d\times k},\ B^\top B = I_k,

(SharedRep-RLHF, arXiv 2509.03672, sec. 1.2 of our note, with the P-ShareLoRA base
:math:`\theta_0`, arXiv 2503.19201), and a comparison of responses :math:`y_0, y_1` with feature
difference :math:`X = \phi(x, y_1) - \phi(x, y_0)` made by a member of group ``u`` is labelled

.. math:: P(y = 1) = \sigma(\langle \theta_u, X\rangle / \tau)

(Bradley–Terry, temperature :math:`\tau`), or deterministically ``y = 1[<theta_u, X> > 0]`` (the
SharedRep LLM tasks: higher score wins, ties go to ``y0``).

Group 0 is the minority in the two-group constructors (as in the SharedRep code, where group 0 is
the minority). All randomness flows from explicit seeds through ``numpy.random.SeedSequence``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import PreferenceData
from .seeding import as_generator, as_seed_sequence, child_seeds
from .validation import (
    InvalidParameterError,
    check_array,
    check_choice,
    check_ids,
    check_int,
    check_probabilities,
    check_real,
    check_seed,
    check_str,
)

__all__ = ["BINDING_W", "NONBINDING_W", "Population", "REGIMES", "minority_proportions",
           "random_orthonormal", "split_users"]

REGIMES = ("shared", "minority_trait", "diverse", "dirichlet", "planted", "spanned", "u_eq_k",
           "binding", "nonbinding")
# Planted weights w_u / signal of the max-min regimes, one row per group, group 0 the minority.
# BINDING_W: the minority (0, 1) and (1, 0) are the two extreme groups and the others dominate
# their mixtures, so the minority binds at the exact max-min optimum (dual weight q*_0 > 0).
BINDING_W = ((0.0, 1.0), (1.0, 0.0), (0.9, 0.8), (0.8, 0.9), (1.0, 0.6))
# NONBINDING_W: the minority (0.85, 0.85) dominates the mixture of the two extreme groups, so
# q*_0 = 0: only estimation error can make it (spuriously) binding.
NONBINDING_W = ((0.85, 0.85), (1.0, 0.0), (0.0, 1.0), (0.8, 0.9), (1.0, 0.6))
LABEL_MODELS = ("bt", "deterministic")
GROUP_SAMPLING = ("random", "fixed")


def random_orthonormal(d: int, k: int, rng) -> np.ndarray:
    """A Haar-random d×k matrix with orthonormal columns (QR of a Gaussian, signs fixed)."""
    G = as_generator(rng).standard_normal((d, k))
    Q, R = np.linalg.qr(G)
    return Q * np.sign(np.where(np.diag(R) == 0, 1.0, np.diag(R)))


def _check_dims(d, k):
    d = check_int(d, "d", low=1)
    if not (isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))
            and 1 <= k <= d):
        raise InvalidParameterError(f"k must be an integer with 1 <= k <= d = {d}; got {k!r}")
    return d, int(k)


def _check_proportions(p, name: str = "proportions") -> np.ndarray:
    return check_probabilities(p, name)


def _check_signal(signal, name: str = "signal") -> float:
    return check_real(signal, name, low=0.0)


def _check_minority(minority) -> float:
    return check_real(minority, "minority", low=0.0, high=1.0, low_open=True, high_open=True)


def minority_proportions(minority: float, n_groups: int) -> np.ndarray:
    """Proportions with group 0 the minority: ``[minority, r, ..., r]``, ``r = (1 - minority) /
    (n_groups - 1)`` (the other groups share the rest equally).

    Parameters
    ----------
    minority : float
        Proportion of group 0, in (0, 1).
    n_groups : int
        Number of groups U, >= 2.

    Returns
    -------
    numpy.ndarray, shape (n_groups,)
        Not renormalised (the constructors renormalise), so the entries are exactly
        ``minority`` and ``(1 - minority) / (n_groups - 1)``.
    """
    minority = _check_minority(minority)
    n_groups = check_int(n_groups, "n_groups", low=2)
    return np.array([minority] + [(1.0 - minority) / (n_groups - 1)] * (n_groups - 1))


@dataclass(frozen=True)
class Curvature:
    """Constants of the BT curvature assumption.

    ``gamma = 1 / (2 + exp(L B) + exp(-L B))`` is the smallest value of
    :math:`\\sigma'(z)` over ``|z| <= L B`` (Zhu, Jordan & Jiao 2023, Assumption 2.1 form), with
    ``B = norm_bound = max_u ||theta_u||`` and ``L = feature_bound`` a bound on ``||X||``.
    For Gaussian features ``L`` is the 99% quantile of ``||X||`` (stated, not a hard bound).
    ``gamma_mean`` is the average ``sigma'(<theta_u, X>)`` over the population's own features,
    the curvature a fit actually sees.
    """

    norm_bound: float
    feature_bound: float
    gamma: float
    gamma_mean: float


class Population:
    """U groups with proportions ``eta`` and parameters ``theta_u = theta0 + B w_u``.

    Parameters
    ----------
    B : array (d, k)
        Shared trait matrix with orthonormal columns.
    W : array (k, U)
        Group weights; column ``u`` is ``w_u``.
    proportions : array (U,)
        Group proportions ``eta``: positive, summing to one.
    theta0 : array (d,), optional
        Shared base parameter (P-ShareLoRA); zero by default.
    users_per_group : int
        Users in each group; user ``g * users_per_group + j`` belongs to group ``g``.
    feature_cov : array (d, d), optional
        Covariance ``Sigma`` of the feature differences X (isotropic when omitted).
    feature_scale : float
        X = feature_scale * N(0, Sigma).
    label_model : {"bt", "deterministic"}
    temperature : float
        BT temperature ``tau`` > 0.
    name : str
        Regime name, for records.
    """

    def __init__(self, B, W, proportions, theta0=None, *, users_per_group: int = 1,
                 feature_cov=None, feature_scale: float = 1.0, label_model: str = "bt",
                 temperature: float = 1.0, name: str = "custom", info: dict | None = None):
        B = check_array(B, "B", ndim=2)
        d, k = B.shape
        _check_dims(d, k)
        if not np.allclose(B.T @ B, np.eye(k), atol=1e-8):
            raise InvalidParameterError("B must have orthonormal columns (B^T B = I_k)")
        W = check_array(W, "W")
        if W.ndim != 2 or W.shape[0] != k:
            raise InvalidParameterError(f"W must have shape (k, U) = ({k}, U); got {W.shape}")
        eta = _check_proportions(proportions)
        if eta.size != W.shape[1]:
            raise InvalidParameterError(
                f"proportions has {eta.size} entries but W has U = {W.shape[1]} columns")
        if theta0 is None:
            theta0 = np.zeros(d)
        theta0 = check_array(theta0, "theta0")
        if theta0.shape != (d,):
            raise InvalidParameterError(f"theta0 must be a finite vector of shape ({d},); got "
                                        f"shape {theta0.shape}")
        users_per_group = check_int(users_per_group, "users_per_group", low=1)
        if feature_cov is not None:
            feature_cov = check_array(feature_cov, "feature_cov")
            if feature_cov.shape != (d, d):
                raise InvalidParameterError(f"feature_cov must be a finite ({d}, {d}) matrix; "
                                            f"got shape {feature_cov.shape}")
            if not np.allclose(feature_cov, feature_cov.T, atol=1e-10):
                raise InvalidParameterError("feature_cov must be symmetric")
            try:
                self._chol = np.linalg.cholesky(feature_cov)
            except np.linalg.LinAlgError:
                raise InvalidParameterError("feature_cov must be positive definite") from None
        else:
            self._chol = None
        feature_scale = check_real(feature_scale, "feature_scale", low=0.0, low_open=True)
        label_model = check_choice(label_model, "label_model", LABEL_MODELS)
        temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
        name = check_str(name, "name")
        if info is not None and not isinstance(info, dict):
            raise InvalidParameterError(f"info must be a dict or None; got {type(info).__name__}")
        self.B = B
        self.W = W
        self.proportions = eta
        self.theta0 = theta0
        self.users_per_group = int(users_per_group)
        self.feature_cov = feature_cov
        self.feature_scale = float(feature_scale)
        self.label_model = label_model
        self.temperature = float(temperature)
        self.name = name
        self.info = dict(info or {})

    # ------------------------------------------------------------ constructors
    @classmethod
    def shared(cls, d: int, k: int, proportions, *, seed, weights: str = "simplex",
               alpha: float = 1.0, signal: float = 2.0, base: float = 0.0, **kwargs):
        """Each group's weights drawn at random; with U > k they span every trait a.s.

        ``weights="simplex"``: ``w_u = signal * Dirichlet(alpha 1_k)`` (SharedRep's assumption);
        ``weights="gaussian"``: ``w_u = signal * N(0, I_k / k)`` (free weights).
        ``base`` > 0 adds a shared ``theta0`` of that norm, orthogonal to span(B).
        """
        d, k = _check_dims(d, k)
        eta = _check_proportions(proportions)
        weights = check_choice(weights, "weights", ("simplex", "gaussian"))
        alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
        signal = _check_signal(signal)
        base = check_real(base, "base", low=0.0)
        check_seed(seed)
        rng_B, rng_W, rng_0 = (np.random.Generator(np.random.PCG64(s))
                               for s in child_seeds(seed, 3))
        B = random_orthonormal(d, k, rng_B)
        U = eta.size
        if weights == "simplex":
            W = signal * rng_W.dirichlet(np.full(k, float(alpha)), size=U).T
        else:
            W = signal * rng_W.standard_normal((k, U)) / math.sqrt(k)
        theta0 = cls._base(B, base, rng_0)
        return cls(B, W, eta, theta0, name="shared",
                   info={"weights": weights, "alpha": alpha, "signal": signal, "base": base},
                   **kwargs)

    @classmethod
    def minority_trait(cls, d: int, minority: float = 0.05, *, seed, signal: float = 2.0,
                       mix=(0.3, 0.7), **kwargs):
        """Two groups and two traits; the second trait is used only by the minority.

        The IMDb set-up of SharedRep-RLHF: majority ``w = e1``, minority
        ``w = 0.3 e1 + 0.7 e2`` (times ``signal``). Group 0 is the minority, with proportion
        ``minority``. Here U = k = 2, so the SharedRep model class contains every pair of
        parameters: it has no statistical advantage over separate fits.
        """
        d, _ = _check_dims(check_int(d, "d", low=2), 2)  # two traits
        minority = _check_minority(minority)
        signal = _check_signal(signal)
        mix = check_array(mix, "mix", shape=(2,))
        mix = (float(mix[0]), float(mix[1]))
        check_seed(seed)
        B = random_orthonormal(d, 2, seed)
        W = signal * np.array([[mix[0], 1.0], [mix[1], 0.0]])
        return cls(B, W, [minority, 1.0 - minority], name="minority_trait",
                   info={"signal": signal, "mix": tuple(mix)}, **kwargs)

    @classmethod
    def diverse(cls, d: int, angle: float = math.pi / 2, proportions=(0.5, 0.5), *, seed,
                signal: float = 2.0, **kwargs):
        """Two groups whose parameters make a given angle (radians, in [0, pi]).

        MaxMin-RLHF's impossibility set-up: diversity grows with the angle; the total-variation
        diversity epsilon of the resulting preference distributions is :meth:`diversity`.
        """
        d, _ = _check_dims(check_int(d, "d", low=2), 2)  # two traits
        angle = check_real(angle, "angle", low=0.0, high=math.pi)
        eta = _check_proportions(proportions)
        if eta.size != 2:
            raise InvalidParameterError("proportions must have exactly 2 entries for the "
                                        f"diverse regime; got {eta.size}")
        signal = _check_signal(signal)
        check_seed(seed)
        B = random_orthonormal(d, 2, seed)
        W = signal * np.array([[1.0, math.cos(angle)], [0.0, math.sin(angle)]])
        return cls(B, W, eta, name="diverse", info={"angle": angle, "signal": signal}, **kwargs)

    @classmethod
    def dirichlet(cls, d: int, k: int, n_groups: int, *, seed, proportions=None,
                  alpha: float = 1.0, signal: float = 2.0, base: float = 0.0,
                  users_per_group: int = 1, **kwargs):
        """Many groups with Dirichlet(alpha) weights (equal proportions unless given).

        For P-ShareLoRA-style personalisation make every user a group
        (``users_per_group=1``) and set ``base`` for a shared ``theta0``; for EM use several
        users per group.
        """
        n_groups = check_int(n_groups, "n_groups", low=1)
        if proportions is None:
            proportions = np.full(n_groups, 1.0 / n_groups)
        eta = _check_proportions(proportions)
        if eta.size != n_groups:
            raise InvalidParameterError(f"proportions must have n_groups = {n_groups} entries; "
                                        f"got {eta.size}")
        pop = cls.shared(d, k, eta, seed=seed, weights="simplex", alpha=alpha, signal=signal,
                         base=base, users_per_group=users_per_group, **kwargs)
        pop.name = "dirichlet"
        return pop

    @classmethod
    def planted(cls, d: int, W, proportions, *, seed, name: str = "planted",
                info: dict | None = None, **kwargs):
        """Planted weights ``W`` (k, U) on a Haar-random trait basis ``B`` (d, k) drawn from
        ``seed``: ``theta_u = B w_u``. The named planted regimes (:meth:`spanned`,
        :meth:`binding`, :meth:`nonbinding`) are this with fixed weights."""
        W = check_array(W, "W", ndim=2)
        d, k = _check_dims(check_int(d, "d", low=1), W.shape[0])
        check_seed(seed)
        return cls(random_orthonormal(d, k, seed), W, proportions, name=name, info=info,
                   **kwargs)

    @classmethod
    def spanned(cls, d: int, minority: float = 0.05, *, seed, signal: float = 2.0,
                mix=(0.3, 0.7), **kwargs):
        """Three groups on two traits whose minority traits are spanned by the others.

        Majority groups ``w = e1`` and ``w = e2``, minority (group 0) ``w = 0.3 e1 + 0.7 e2`` (the
        IMDb minority mix of :meth:`minority_trait`, times ``signal``); the other two groups
        share ``1 - minority`` equally. U = 3 > k = 2: the case where SharedRep can win.
        """
        d, _ = _check_dims(check_int(d, "d", low=2), 2)  # two traits
        signal = _check_signal(signal)
        mix = check_array(mix, "mix", shape=(2,))
        mix = (float(mix[0]), float(mix[1]))
        W = signal * np.array([[mix[0], 1.0, 0.0], [mix[1], 0.0, 1.0]])
        return cls.planted(d, W, minority_proportions(minority, 3), seed=seed, name="spanned",
                           info={"signal": signal, "mix": mix}, **kwargs)

    @classmethod
    def u_eq_k(cls, d: int, minority: float = 0.05, *, seed, k: int = 3, signal: float = 2.0,
               alpha: float = 1.0, **kwargs):
        """As many groups as traits (U = k), ``signal * Dirichlet(alpha)`` simplex weights.

        Group 0 has proportion ``minority``, the others share the rest equally. Every group uses
        every trait, but with U = k the SharedRep class ``{B w_u}`` holds every U-tuple of
        parameters: no statistical gain over separate fits. The draw is :meth:`shared`'s.
        """
        pop = cls.shared(d, k, minority_proportions(minority, k), seed=seed, weights="simplex",
                         alpha=alpha, signal=signal, **kwargs)
        pop.name = "u_eq_k"
        return pop

    @classmethod
    def binding(cls, d: int, minority: float = 0.05, *, seed, signal: float = 2.0, **kwargs):
        """Five groups on two planted traits (:data:`BINDING_W` times ``signal``), minority binding.

        The minority (group 0) is one of the two extreme groups: it binds at the exact max-min
        optimum of the true rewards (dual weight ``q*_0 > 0``). The other four groups share
        ``1 - minority`` equally; every group's weights are spanned by the others'.
        """
        return cls._maxmin_planted("binding", BINDING_W, d, minority, seed, signal, kwargs)

    @classmethod
    def nonbinding(cls, d: int, minority: float = 0.05, *, seed, signal: float = 2.0,
                   **kwargs):
        """Five groups on two planted traits (:data:`NONBINDING_W` times ``signal``), minority not
        binding: its weights dominate the extreme groups' mixture, so ``q*_0 = 0``."""
        return cls._maxmin_planted("nonbinding", NONBINDING_W, d, minority, seed, signal, kwargs)

    @classmethod
    def _maxmin_planted(cls, name, rows, d, minority, seed, signal, kwargs):
        signal = _check_signal(signal)
        W = signal * np.array(rows, dtype=float).T
        return cls.planted(d, W, minority_proportions(minority, W.shape[1]), seed=seed,
                           name=name, info={"signal": signal}, **kwargs)

    @classmethod
    def from_regime(cls, regime: str, **kwargs):
        """Build by regime name (one of :data:`REGIMES`), for specs and the CLI."""
        regime = check_choice(regime, "regime", REGIMES)
        return getattr(cls, regime)(**kwargs)

    def new_users(self, n_users: int, *, seed, proportions=None, W=None,
                  weights: str | None = None, alpha: float | None = None,
                  signal: float | None = None) -> Population:
        """Fresh users on this population's traits: same ``B``, ``theta0`` and feature law.

        The few-shot setting (issue 12 item 4): a trait matrix ``B`` learned on this population is
        reused for users it has never seen. The result has ``n_users`` groups of one user each,
        whose weights are drawn the way this population's were: ``signal * Dirichlet(alpha 1_k)``
        for simplex weights (regimes ``shared`` / ``dirichlet`` with ``weights="simplex"``), or
        ``signal * N(0, I_k / k)`` for gaussian weights. ``B``, ``theta0``, ``feature_cov``,
        ``feature_scale``, ``label_model`` and ``temperature`` are this population's own.

        Parameters
        ----------
        n_users : int
            Number of new users, >= 1. New user ``j`` is group ``j`` of the result.
        seed : int or SeedSequence
            The weights are a function of it (drawn through :func:`as_seed_sequence`).
        proportions : array (n_users,), optional
            Proportions of the new users in the result's samples; uniform by default.
        W : array (k, n_users), optional
            Explicit weights. Required for regimes whose weights are not random
            (``minority_trait``, ``diverse``, ``custom``) unless ``weights`` is given.
        weights : {"simplex", "gaussian"}, optional
            The weight law; defaults to this population's (``info["weights"]``).
        alpha : float, optional
            Dirichlet concentration (> 0) for simplex weights; defaults to ``info["alpha"]``,
            or 1 when this population records none.
        signal : float, optional
            Scale of the weights (> 0); defaults to ``info["signal"]``.

        Returns
        -------
        Population
            ``info`` records the weight law and ``info["parent"]`` (name, number of groups and
            ``repr`` of this population).

        Raises
        ------
        ValueError
            Bad ``n_users``, ``proportions``, ``W``, ``alpha`` or ``signal``, both ``W`` and a
            weight law given, or no weight law known (this population's weights were not random
            and neither ``W`` nor ``weights`` was given).
        """
        n_users = check_int(n_users, "n_users", low=1)
        if proportions is None:
            proportions = np.full(n_users, 1.0 / n_users)
        eta = _check_proportions(proportions)
        if eta.size != n_users:
            raise InvalidParameterError(f"proportions must have n_users = {n_users} entries; "
                                        f"got {eta.size}")
        weights = check_choice(weights, "weights", (None, "simplex", "gaussian"))
        alpha = check_real(alpha, "alpha", low=0.0, low_open=True, allow_none=True)
        signal = check_real(signal, "signal", low=0.0, low_open=True, allow_none=True)
        # The seed is validated even when W is explicit, so a bad call fails the same way always.
        ss = as_seed_sequence(seed)
        k = self.k
        parent = {"name": self.name, "n_groups": self.n_groups, "repr": repr(self)}
        if W is not None:
            if weights is not None or alpha is not None or signal is not None:
                raise InvalidParameterError("pass either W or a weight law (weights / alpha / "
                                            "signal), not both")
            W = check_array(W, "W")
            if W.shape != (k, n_users):
                raise InvalidParameterError(f"W must have shape (k, n_users) = ({k}, {n_users}); "
                                            f"got {W.shape}")
            info = {"weights": "explicit", "parent": parent}
        else:
            law = weights if weights is not None else self.info.get("weights")
            if law is None:
                raise ValueError(
                    f"population {self.name!r} has no random weight law to draw new users from; "
                    "pass W=(k, n_users) array, or weights='simplex' (with alpha=, signal=) or "
                    "weights='gaussian' (with signal=)")
            law = check_choice(law, "weights", ("simplex", "gaussian"))
            signal = self.info.get("signal") if signal is None else signal
            if signal is None:
                raise ValueError(f"population {self.name!r} records no signal; pass signal= "
                                 "(the scale of the weights, > 0)")
            signal = check_real(signal, "signal", low=0.0, low_open=True)
            alpha = self.info.get("alpha", 1.0) if alpha is None else alpha
            if law == "simplex":
                alpha = check_real(alpha, "alpha", low=0.0, low_open=True)
            rng_W = np.random.Generator(np.random.PCG64(ss))
            if law == "simplex":
                W = signal * rng_W.dirichlet(np.full(k, float(alpha)), size=n_users).T
            else:
                W = signal * rng_W.standard_normal((k, n_users)) / math.sqrt(k)
            info = {"weights": law, "signal": float(signal), "parent": parent}
            if law == "simplex":
                info["alpha"] = float(alpha)
        return Population(self.B.copy(), W, eta, self.theta0.copy(), users_per_group=1,
                          feature_cov=self.feature_cov, feature_scale=self.feature_scale,
                          label_model=self.label_model, temperature=self.temperature,
                          name=self.name, info=info)

    @staticmethod
    def _base(B, norm, rng):
        d = B.shape[0]
        norm = check_real(norm, "base", low=0.0)
        if norm == 0:
            return np.zeros(d)
        v = rng.standard_normal(d)
        v -= B @ (B.T @ v)  # keep theta0 out of span(B) so B w_u stays identifiable
        nv = np.linalg.norm(v)
        if nv == 0:  # d == k: no orthogonal complement
            v = rng.standard_normal(d)
            nv = np.linalg.norm(v)
        return norm * v / nv

    # ---------------------------------------------------------------- shapes
    @property
    def d(self) -> int:
        return self.B.shape[0]

    @property
    def k(self) -> int:
        return self.B.shape[1]

    @property
    def n_groups(self) -> int:
        return self.W.shape[1]

    @property
    def n_users(self) -> int:
        return self.n_groups * self.users_per_group

    @property
    def user_group(self) -> np.ndarray:
        """Group of each user, shape (n_users,)."""
        return np.repeat(np.arange(self.n_groups), self.users_per_group)

    @property
    def theta(self) -> np.ndarray:
        """True parameters, shape (U, d): row u is ``theta0 + B w_u``."""
        return self.theta0[None, :] + (self.B @ self.W).T

    @property
    def minority(self) -> int:
        """Index of the smallest group (the first one on ties)."""
        return int(np.argmin(self.proportions))

    @property
    def norm_bound(self) -> float:
        """``max_u ||theta_u||``."""
        return float(np.linalg.norm(self.theta, axis=1).max())

    def traits_spanned_by_others(self, u: int | None = None, tol: float = 1e-8) -> bool:
        """Whether ``w_u`` lies in the span of the other groups' weights.

        True is the case where pooling can help the minority (U > k with generic weights);
        with U <= k or a minority-only trait it is False.
        """
        u = self.minority if u is None else check_int(u, "u", low=0, high=self.n_groups - 1)
        tol = check_real(tol, "tol", low=0.0)
        others = np.delete(self.W, u, axis=1)
        if others.size == 0:
            return False
        coef, *_ = np.linalg.lstsq(others, self.W[:, u], rcond=None)
        resid = self.W[:, u] - others @ coef
        return bool(np.linalg.norm(resid) <= tol * max(1.0, np.linalg.norm(self.W[:, u])))

    def feature_sigma(self) -> np.ndarray:
        """Covariance of X: ``feature_scale^2 * Sigma``."""
        S = np.eye(self.d) if self.feature_cov is None else self.feature_cov
        return self.feature_scale**2 * S

    def curvature(self, seed=0, n_mc: int = 20000) -> Curvature:
        """Norm bound B, feature bound L, worst-case gamma and mean curvature (see Curvature)."""
        from scipy.stats import chi2

        n_mc = check_int(n_mc, "n_mc", low=1)
        Sigma = self.feature_sigma()
        L = float(math.sqrt(chi2.ppf(0.99, self.d) * np.linalg.eigvalsh(Sigma).max()))
        Bn = self.norm_bound
        z = L * Bn / self.temperature
        gamma = 1.0 / (2.0 + math.exp(min(z, 700.0)) + math.exp(-z))
        X = self._features(n_mc, as_generator(seed))
        zz = (X @ self.theta.T) / self.temperature
        s = 1.0 / (1.0 + np.exp(-zz))
        return Curvature(norm_bound=Bn, feature_bound=L, gamma=gamma,
                         gamma_mean=float(np.mean(s * (1 - s))))

    def task_diversity(self) -> tuple[float, float]:
        """Task diversity of the groups' weights (Tripuraneni, Jin & Jordan 2021, used by the
        shared-representation rates): ``nu`` the smallest eigenvalue of ``G = W W^T / U`` and
        ``kappa_bar = trace(G) / (k nu)`` (1 when the weights are isotropic)."""
        G = self.W @ self.W.T / self.n_groups
        ev = np.linalg.eigvalsh(G)
        return float(ev[0]), float(np.trace(G) / (self.k * ev[0]))

    def diversity(self, seed=0, n_mc: int = 50000) -> np.ndarray:
        """Pairwise total-variation diversity (U, U) between groups' preference distributions.

        ``eps_{uv} = E_X |P_u(y=1|X) - P_v(y=1|X)|`` (MaxMin-RLHF Definition 1 in TV form),
        estimated by Monte Carlo over the population's feature distribution.
        """
        n_mc = check_int(n_mc, "n_mc", low=1)
        X = self._features(n_mc, as_generator(seed))
        P = 1.0 / (1.0 + np.exp(-(X @ self.theta.T) / self.temperature))
        return np.abs(P[:, :, None] - P[:, None, :]).mean(axis=0)

    # -------------------------------------------------------------- sampling
    def _features(self, n, rng) -> np.ndarray:
        Z = rng.standard_normal((n, self.d))
        if self._chol is not None:
            Z = Z @ self._chol.T
        return self.feature_scale * Z

    def _groups(self, n, rng, group_sampling):
        if group_sampling == "random":
            return rng.choice(self.n_groups, size=n, p=self.proportions)
        # "fixed": exact counts n_u = round(eta_u n) by largest remainder, in random order
        raw = self.proportions * n
        counts = np.floor(raw).astype(np.int64)
        rem = n - counts.sum()
        counts[np.argsort(-(raw - counts), kind="stable")[:rem]] += 1
        g = np.repeat(np.arange(self.n_groups), counts)
        return rng.permutation(g)

    def sample(self, n: int, seed, *, env=None, group_sampling: str = "random",
               user_sampling: str = "random") -> PreferenceData:
        """Draw ``n`` labelled comparisons.

        Parameters
        ----------
        n : int
            Number of comparisons, >= 1.
        seed : int or SeedSequence
            Everything drawn (groups, users, features, labels) is a function of it.
        env : FiniteArmEnv, optional
            Draw contexts from ``env.rho`` and two distinct actions from ``env.pi_ref``; X is
            then the difference of the arms' features and the result records ``context`` and
            ``actions``. Without it, X ~ feature_scale * N(0, Sigma).
        group_sampling : {"random", "fixed"}
            "random": each comparison's group drawn with the proportions; "fixed": exactly
            ``round(eta_u n)`` comparisons per group.
        user_sampling : {"random", "fixed"}
            "random": each comparison's user uniform within its group; "fixed": a group's
            comparisons shared out as evenly as possible among its users (counts differ by at
            most one, in random order), so every user labels some pairs once the group has at
            least ``users_per_group`` of them (MaxMin-RLHF's users each label ``n_h`` pairs).
        """
        n = check_int(n, "n", low=1)
        group_sampling = check_choice(group_sampling, "group_sampling", GROUP_SAMPLING)
        user_sampling = check_choice(user_sampling, "user_sampling", GROUP_SAMPLING)
        if env is not None:
            from .arms import FiniteArmEnv

            if not isinstance(env, FiniteArmEnv):
                raise InvalidParameterError(f"env must be a FiniteArmEnv or None; got "
                                            f"{type(env).__name__}")
        # Independent streams, so that e.g. a different label model leaves X unchanged.
        r_group, r_user, r_x, r_label = (np.random.Generator(np.random.PCG64(s))
                                         for s in child_seeds(seed, 4))
        group = self._groups(int(n), r_group, group_sampling)
        upg = self.users_per_group
        if user_sampling == "fixed":
            within = np.empty(int(n), dtype=np.int64)
            for g in range(self.n_groups):
                idx = np.flatnonzero(group == g)
                within[idx] = r_user.permutation(np.arange(idx.size) % upg)
            user = group * upg + within
        else:
            user = group * upg + r_user.integers(0, upg, size=n)
        context = actions = None
        if env is None:
            X = self._features(int(n), r_x)
        else:
            if env.d != self.d:
                raise ValueError(f"env has feature dimension {env.d}, population has d = {self.d}")
            context, actions, X = env.sample_comparisons(int(n), r_x)
        margin = np.einsum("ij,ij->i", X, self.theta[group]) / self.temperature
        if self.label_model == "bt":
            with np.errstate(over="ignore"):  # exp(-margin) = inf gives P = 0, as it should
                y = (r_label.random(n) < 1.0 / (1.0 + np.exp(-margin))).astype(np.int8)
        else:  # higher score wins; ties go to y0 (SharedRep LLM tasks)
            y = (margin > 0).astype(np.int8)
        return PreferenceData(X=X, y=y, group=group, user=user, n_groups=self.n_groups,
                              n_users=self.n_users, context=context, actions=actions,
                              user_group=self.user_group,
                              meta={"population": self.name, "label_model": self.label_model})

    def arm_env(self, n_contexts: int, n_actions: int, seed, *, rho=None, pi_ref=None):
        """A finite-arm environment whose arm features phi(x, a) ~ N(0, Sigma / 2) * scale.

        The halved covariance makes the difference of two arms' features distributed like the
        population's X.
        """
        from .arms import FiniteArmEnv

        n_contexts = check_int(n_contexts, "n_contexts", low=1)
        if not (isinstance(n_actions, (int, np.integer))
                and not isinstance(n_actions, (bool, np.bool_)) and n_actions >= 2):
            raise InvalidParameterError(f"n_actions must be an integer >= 2 to form comparisons; "
                                        f"got {n_actions!r}")
        n_actions = int(n_actions)
        rng = as_generator(as_seed_sequence(seed))
        phi = self._features(n_contexts * n_actions, rng) / math.sqrt(2.0)
        return FiniteArmEnv(phi.reshape(n_contexts, n_actions, self.d), rho=rho, pi_ref=pi_ref)

    def reward(self, X, group) -> np.ndarray:
        """True rewards ``<theta_group, X>`` (X of shape (n, d) or (d,); group int or (n,))."""
        X = check_array(X, "X", ndim=(1, 2))
        if X.shape[-1] != self.d:
            raise InvalidParameterError(f"X must have d = {self.d} columns; got shape {X.shape}")
        if np.ndim(group) == 0:
            group = check_int(group, "group", low=0, high=self.n_groups - 1)
        else:
            group = check_ids(group, "group", upper=self.n_groups, upper_name="n_groups")
        return np.einsum("...j,...j->...", X, self.theta[group])

    def __repr__(self) -> str:
        return (f"Population({self.name}, d={self.d}, k={self.k}, U={self.n_groups}, "
                f"proportions={np.round(self.proportions, 4).tolist()}, "
                f"users_per_group={self.users_per_group}, label_model={self.label_model!r})")


def split_users(data: PreferenceData, comparisons_per_user: int) -> PreferenceData:
    """``data`` with each group's comparisons split into users of exactly
    ``comparisons_per_user`` comparisons each.

    Within group g the comparisons are taken in data order (already random for a
    ``Population.sample`` draw) and cut into consecutive blocks of ``m``; the users are
    numbered group by group (group 0's first), so ``user_group`` is sorted. Every group's count
    must be a multiple of ``m`` (e.g. ``group_sampling="fixed"`` with proportions
    ``users_g / n_users`` and ``n = n_users * m``); the EM model of MaxMin-RLHF (Algorithm 2)
    clusters such users.
    """
    if not isinstance(data, PreferenceData):
        raise InvalidParameterError(f"data must be a PreferenceData; got {type(data).__name__}")
    m = check_int(comparisons_per_user, "comparisons_per_user", low=1)
    counts = data.group_counts()
    bad = np.flatnonzero(counts % m)
    if bad.size:
        raise InvalidParameterError(
            f"comparisons_per_user: group {int(bad[0])} has {int(counts[bad[0]])} comparisons, "
            f"not a multiple of comparisons_per_user = {m}")
    users = counts // m
    offsets = np.concatenate([[0], np.cumsum(users)[:-1]])
    user = np.empty_like(data.group)
    for g in range(data.n_groups):
        idx = np.flatnonzero(data.group == g)
        user[idx] = offsets[g] + np.arange(idx.size) // m
    user_group = np.repeat(np.arange(data.n_groups, dtype=np.int64), users)
    return PreferenceData(X=data.X, y=data.y, group=data.group, user=user,
                          n_groups=data.n_groups, n_users=int(users.sum()),
                          context=data.context, actions=data.actions, user_group=user_group,
                          meta=data.meta)

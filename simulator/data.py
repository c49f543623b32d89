"""Pairwise preference data: arrays, validation and pandas / parquet I/O.

No statistics live here. A :class:`PreferenceData` holds ``n`` comparisons; comparison ``i``
was labelled by user ``user[i]`` who belongs to group ``group[i]``, and its feature difference is
``X[i] = phi(x_i, y1_i) - phi(x_i, y0_i)``. ``y[i] = 1`` means ``y1`` was preferred.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .seeding import as_generator
from .validation import (
    InvalidParameterError,
    check_array,
    check_bool,
    check_choice,
    check_ids,
    check_int,
    check_real,
)

__all__ = ["PreferenceData"]


def _check_finite_matrix(X, name: str) -> np.ndarray:
    X = check_array(X, name, finite=False)
    if X.ndim != 2:
        raise InvalidParameterError(f"{name} must be a 2-D array (n, d); got shape {X.shape}")
    if X.shape[1] < 1:
        raise InvalidParameterError(f"{name} must have at least one column (d >= 1); got shape "
                                    f"{X.shape}")
    if not np.all(np.isfinite(X)):
        bad = int(np.count_nonzero(~np.isfinite(X)))
        raise InvalidParameterError(f"{name} contains {bad} NaN or infinite entries; all "
                                    "features must be finite")
    return X


def _check_labels(y, n: int) -> np.ndarray:
    """Labels in {0, 1}: an integer, boolean or integral float array of shape (n,)."""
    if isinstance(y, (str, bytes)):
        raise InvalidParameterError(f"y must be an array of labels 0 and 1; got {y!r}")
    try:
        y = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"y must be an array of labels 0 and 1 ({exc})") from None
    if y.dtype.kind not in "biuf":
        raise InvalidParameterError(f"y must contain only labels 0 and 1 (1 = y1 preferred); "
                                    f"got dtype {y.dtype}")
    if y.shape != (n,):
        raise InvalidParameterError(f"y must have shape ({n},) to match X; got {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise InvalidParameterError("y must contain only labels 0 and 1 (1 = y1 preferred)")
    return y.astype(np.int8)


@dataclass(eq=False)
class PreferenceData:
    """A validated set of pairwise comparisons.

    Parameters
    ----------
    X : array of shape (n, d)
        Feature differences ``phi(x, y1) - phi(x, y0)``; finite floats.
    y : array of shape (n,)
        Labels in {0, 1}; 1 means ``y1`` was preferred.
    group : array of shape (n,), optional
        Group id of the annotator, in ``[0, n_groups)``. Defaults to all zeros.
    user : array of shape (n,), optional
        User id of the annotator, in ``[0, n_users)``. Defaults to ``group``.
    n_groups, n_users : int, optional
        Number of groups / users. Default to ``max(id) + 1``. Groups with no comparisons are
        allowed here (estimators that need data per group check it in ``fit``).
    context, actions : arrays, optional
        For data drawn from a finite-arm environment: context index (n,) and the two action
        indices (n, 2) as ``(a0, a1)``.
    user_group : array of shape (n_users,), optional
        Group of each user, when known.
    """

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray | None = None
    user: np.ndarray | None = None
    n_groups: int | None = None
    n_users: int | None = None
    context: np.ndarray | None = None
    actions: np.ndarray | None = None
    user_group: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.X = _check_finite_matrix(self.X, "X")
        n = self.X.shape[0]
        if n < 1:
            raise InvalidParameterError("X must have at least one row (n >= 1)")
        self.y = _check_labels(self.y, n)
        self.n_groups = check_int(self.n_groups, "n_groups", low=1, allow_none=True)
        self.n_users = check_int(self.n_users, "n_users", low=1, allow_none=True)
        self.group = self._ids(self.group, n, "group", np.zeros(n, dtype=np.int64),
                               self.n_groups, "n_groups")
        self.user = self._ids(self.user, n, "user", self.group.copy(), self.n_users, "n_users")
        self.n_groups = self._count(self.n_groups, self.group)
        self.n_users = self._count(self.n_users, self.user)
        if self.context is not None:
            self.context = self._ids(self.context, n, "context", None)
        if self.actions is not None:
            a = np.asarray(self.actions)
            if a.shape != (n, 2) or not np.issubdtype(a.dtype, np.integer):
                raise InvalidParameterError(f"actions must be an integer array of shape ({n}, 2)"
                                            f"; got shape {a.shape} and dtype {a.dtype}")
            if a.size and a.min() < 0:
                raise InvalidParameterError(f"actions must be >= 0; got min {a.min()}")
            self.actions = a.astype(np.int64)
        if self.user_group is not None:
            ug = np.asarray(self.user_group)
            if ug.shape != (self.n_users,):
                raise InvalidParameterError(f"user_group must have shape (n_users,) = "
                                            f"({self.n_users},); got {ug.shape}")
            self.user_group = check_ids(ug, "user_group", upper=self.n_groups,
                                        upper_name="n_groups")
        if not isinstance(self.meta, dict):
            raise InvalidParameterError(f"meta must be a dict; got {type(self.meta).__name__}")

    @staticmethod
    def _ids(a, n, name, default, upper=None, upper_name=None):
        if a is None:
            if default is None or upper is None:
                return default
            a = default  # e.g. user ids defaulting to the group ids: still below n_users
        return check_ids(a, name, n=n, upper=upper, upper_name=upper_name)

    @staticmethod
    def _count(k, ids):
        if k is None:
            return max(int(ids.max()) + 1 if ids.size else 0, 1)
        return k

    # ------------------------------------------------------------------ shape
    @property
    def n(self) -> int:
        """Number of comparisons."""
        return self.X.shape[0]

    @property
    def d(self) -> int:
        """Feature dimension."""
        return self.X.shape[1]

    def __len__(self) -> int:
        return self.n

    def group_counts(self) -> np.ndarray:
        """Number of comparisons per group, shape (n_groups,)."""
        return np.bincount(self.group, minlength=self.n_groups)

    def user_counts(self) -> np.ndarray:
        """Number of comparisons per user, shape (n_users,)."""
        return np.bincount(self.user, minlength=self.n_users)

    def group_rows(self, by: str = "group") -> list[np.ndarray]:
        """Row indices of each group (or user): ``rows[u]`` lists the comparisons of ``u``.

        The one group-sorting index of the package (every estimator that solves per group uses
        it). Rows of each group are in increasing order, ids with no comparisons get an empty
        array, and ``len(rows) == n_groups`` (``n_users`` for ``by="user"``).

        Parameters
        ----------
        by : {"group", "user"}

        Returns
        -------
        list of int64 arrays
            Read-only views, cached on the object: the index is computed once per id array. The
            arrays of a ``PreferenceData`` are treated as immutable; replace ``group`` / ``user``
            (which resets the cache) rather than writing into them.
        """
        if isinstance(by, str) and by == "group":
            ids, count = self.group, self.n_groups
        elif isinstance(by, str) and by == "user":
            ids, count = self.user, self.n_users
        else:
            raise InvalidParameterError(f"by must be 'group' or 'user'; got {by!r}")
        cache = self.__dict__.setdefault("_rows_cache", {})
        hit = cache.get(by)
        # keyed on the id array's identity and the count, so reassigning either recomputes
        if hit is not None and hit[0] is ids and hit[1] == count:
            return list(hit[2])
        # stable sort: within a group the rows keep their order in the data
        order = np.argsort(ids, kind="stable")
        order.flags.writeable = False
        bounds = np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=count))])
        rows = [order[bounds[u]:bounds[u + 1]] for u in range(count)]
        cache[by] = (ids, count, rows)
        return list(rows)

    def signed(self) -> np.ndarray:
        """``s_i = (2 y_i - 1) X_i``: the BT log-likelihood is ``sum log sigma(s_i . theta)``."""
        return self.X * (2.0 * self.y - 1.0)[:, None]

    # ------------------------------------------------------------- subsetting
    def subset(self, index) -> PreferenceData:
        """Rows selected by a boolean mask or an integer index; id spaces are kept."""
        index = np.asarray(index)
        if index.size == 0:
            raise InvalidParameterError("subset would be empty; a PreferenceData needs n >= 1 "
                                        "rows")
        if index.dtype == bool:
            if index.shape != (self.n,):
                raise InvalidParameterError(f"boolean index must have shape ({self.n},); got "
                                            f"{index.shape}")
        elif index.dtype.kind not in "iu" or index.ndim != 1:
            raise InvalidParameterError(f"index must be a boolean mask or 1-D integer row "
                                        f"indices; got dtype {index.dtype} and shape "
                                        f"{index.shape}")
        elif index.size and (index.min() < -self.n or index.max() >= self.n):
            raise InvalidParameterError(f"index must hold row numbers in [0, n) = "
                                        f"[0, {self.n}); got min {index.min()}, max "
                                        f"{index.max()}")
        if index.dtype == bool and not index.any():
            raise InvalidParameterError("subset would be empty; a PreferenceData needs n >= 1 "
                                        "rows")
        return PreferenceData(
            X=self.X[index], y=self.y[index], group=self.group[index], user=self.user[index],
            n_groups=self.n_groups, n_users=self.n_users,
            context=None if self.context is None else self.context[index],
            actions=None if self.actions is None else self.actions[index],
            user_group=self.user_group, meta=dict(self.meta),
        )

    def as_units(self, unit: str = "group") -> PreferenceData:
        """The same comparisons with ``unit``'s ids as the group ids: ``self`` for
        ``unit="group"``; for ``"user"`` a copy whose groups are the users (``group = user``,
        ``n_groups = n_users``; no copy of X). Estimators that personalise per user
        (``unit="user"``) fit on this view, so each user is one unit of their ``theta_``.
        """
        unit = check_choice(unit, "unit", ("group", "user"))
        if unit == "group":
            return self
        return PreferenceData(
            X=self.X, y=self.y, group=self.user, user=self.user, n_groups=self.n_users,
            n_users=self.n_users, context=self.context, actions=self.actions,
            meta=dict(self.meta, unit="user"))

    def by_group(self, u: int) -> PreferenceData:
        """The comparisons labelled by group ``u``."""
        if not (isinstance(u, (int, np.integer)) and not isinstance(u, (bool, np.bool_))
                and 0 <= u < self.n_groups):
            raise InvalidParameterError(f"group must be an integer in [0, n_groups) = "
                                        f"[0, {self.n_groups}); got {u!r}")
        mask = self.group == int(u)
        if not mask.any():
            raise ValueError(f"group {u} has no comparisons")
        return self.subset(mask)

    def train_test_split(self, test_size: float = 0.2, *, seed, stratify_group: bool = True):
        """Random split into (train, test); stratified by group by default.

        ``test_size`` is a fraction in (0, 1). Groups with a single comparison stay in train.
        """
        test_size = check_real(test_size, "test_size", low=0.0, high=1.0, low_open=True,
                               high_open=True)
        stratify_group = check_bool(stratify_group, "stratify_group")
        rng = as_generator(seed)
        is_test = np.zeros(self.n, dtype=bool)
        strata = [self.group == u for u in range(self.n_groups)] if stratify_group else [
            np.ones(self.n, dtype=bool)]
        for mask in strata:
            idx = np.flatnonzero(mask)
            m = int(np.floor(test_size * idx.size))
            if idx.size >= 2:
                m = min(max(m, 1), idx.size - 1)
                is_test[rng.choice(idx, size=m, replace=False)] = True
        return self.subset(~is_test), self.subset(is_test)

    # ------------------------------------------------------------------- I/O
    def to_frame(self):
        """A tidy pandas DataFrame: columns x0..x{d-1}, y, group, user (+ context, a0, a1)."""
        import pandas as pd

        cols = {f"x{j}": self.X[:, j] for j in range(self.d)}
        cols.update(y=self.y, group=self.group, user=self.user)
        if self.context is not None:
            cols["context"] = self.context
        if self.actions is not None:
            cols["a0"], cols["a1"] = self.actions[:, 0], self.actions[:, 1]
        df = pd.DataFrame(cols)
        df.attrs["n_groups"] = int(self.n_groups)
        df.attrs["n_users"] = int(self.n_users)
        return df

    @classmethod
    def from_frame(cls, df, n_groups=None, n_users=None) -> PreferenceData:
        """Inverse of :meth:`to_frame`."""
        xcols = sorted((c for c in df.columns if c.startswith("x") and c[1:].isdigit()),
                       key=lambda c: int(c[1:]))
        if not xcols:
            raise ValueError("DataFrame has no feature columns named x0, x1, ...")
        for c in ("y", "group", "user"):
            if c not in df.columns:
                raise ValueError(f"DataFrame is missing the column {c!r}")
        n_groups = n_groups if n_groups is not None else df.attrs.get("n_groups")
        n_users = n_users if n_users is not None else df.attrs.get("n_users")
        actions = None
        if "a0" in df.columns and "a1" in df.columns:
            actions = np.stack([df["a0"].to_numpy(), df["a1"].to_numpy()], axis=1)
        return cls(
            X=df[xcols].to_numpy(dtype=np.float64), y=df["y"].to_numpy(),
            group=df["group"].to_numpy(), user=df["user"].to_numpy(),
            n_groups=n_groups, n_users=n_users,
            context=df["context"].to_numpy() if "context" in df.columns else None,
            actions=actions,
        )

    def to_parquet(self, path) -> Path:
        """Write to a parquet file (counts kept in the file's key-value metadata)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"pluralrlhf.n_groups"] = str(self.n_groups).encode()
        meta[b"pluralrlhf.n_users"] = str(self.n_users).encode()
        pq.write_table(table.replace_schema_metadata(meta), path)
        return path

    @classmethod
    def read_parquet(cls, path) -> PreferenceData:
        """Read a file written by :meth:`to_parquet`."""
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        ng = meta.get(b"pluralrlhf.n_groups")
        nu = meta.get(b"pluralrlhf.n_users")
        return cls.from_frame(table.to_pandas(), n_groups=int(ng) if ng else None,
                              n_users=int(nu) if nu else None)

    def __repr__(self) -> str:
        return (f"PreferenceData(n={self.n}, d={self.d}, n_groups={self.n_groups}, "
                f"n_users={self.n_users}, group_counts={self.group_counts().tolist()})")

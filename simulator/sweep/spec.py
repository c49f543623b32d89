"""Sweep specifications: parsing, validation, expansion into cells, canonical encoding and seeds.

A spec is a TOML file or the equivalent dict::

    [sweep]                     # reserved: how to run
    task = "estimation"         # a registered task or "package.module:function"
    seed = 20240601             # root seed (integer >= 0)
    replicates = 3              # seeds per cell (>= 1)
    seed_ignore = []            # parameters that do not enter the cells' seeds (task default)

    n = 1000                    # every other top-level key is a fixed task parameter ...
    [population]                # ... tables included (nested parameters)
    regime = "shared"

    [axes]                      # cartesian product; names are dotted parameter paths
    n = [100, 1000]
    "population.d" = [4, 8]

    [[zip]]                     # each [[zip]] table is one factor: equal-length lists, zipped
    "population.k" = [1, 2]
    label = ["one", "two"]

A *cell* is one grid point times one replicate. Its parameters are the fixed parameters with the
axis values deep-merged in (an axis value that is a table is merged into the table it names).
Its seed is ``derive_seed_sequence(seed, seed_key, replicate)`` where ``seed_key`` is the
canonical JSON of its parameters (keys sorted, minus ``seed_ignore``): it does not depend on the
order of the axes, on the execution order or on the executor.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..seeding import derive_seed_sequence
from .errors import SpecError
from .registry import get_task

__all__ = ["SpecError", "SweepSpec", "Cell", "load_spec", "canonical_json", "flatten",
           "unflatten", "RESERVED_COLUMNS"]

SWEEP_KEYS = {"name", "description", "task", "seed", "replicates", "seed_ignore"}
TOP_RESERVED = {"sweep", "axes", "zip"}
# Columns every shard carries besides the parameters and the metrics.
RESERVED_COLUMNS = ("cell_id", "cell_index", "replicate", "status", "error", "elapsed_s", "seed",
                    "seed_key", "seed_spawn_key")


# --------------------------------------------------------------------- canonical values
def _normalize(value, key: str):
    """Plain JSON-like Python values: numpy scalars/arrays and tuples converted, others refused."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_normalize(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise SpecError(key, f"keys must be strings; got {k!r}")
            out[k] = _normalize(v, f"{key}.{k}" if key else k)
        return out
    raise SpecError(key, f"unsupported value {value!r} of type {type(value).__name__} "
                         "(use numbers, strings, booleans, lists or tables)")


def canonical_json(value) -> str:
    """Repr-stable text of a JSON-like value: keys sorted, no spaces, floats by ``repr``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _hash(text: str, n: int = 64) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def flatten(params: dict, prefix: str = "") -> dict:
    """Nested dict -> ``{"a.b": value}`` (lists are values, not flattened)."""
    out = {}
    for k, v in params.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


def unflatten(flat: dict) -> dict:
    """``{"a.b": value}`` -> nested dict (the inverse of :func:`flatten`)."""
    out: dict = {}
    for name, v in flat.items():
        _set_path(out, name.split("."), v)
    return out


def _set_path(d: dict, path, value, merge: bool = True):
    for p in path[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = d[p] = {}
        d = nxt
    last = path[-1]
    if merge and isinstance(value, dict) and isinstance(d.get(last), dict):
        _deep_merge(d[last], value)
    else:
        d[last] = copy.deepcopy(value)


def _deep_merge(base: dict, extra: dict):
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


def _drop_path(d: dict, path):
    for p in path[:-1]:
        d = d.get(p)
        if not isinstance(d, dict):
            return
    d.pop(path[-1], None)


def _axis_tables(table, where: str) -> dict:
    """Flatten an ``[axes]`` / ``[[zip]]`` table; nested tables are dotted names (TOML dotted
    keys)."""
    if not isinstance(table, dict):
        raise SpecError(where, "must be a table of name = [values]")
    out = {}

    def walk(t, prefix):
        for k, v in t.items():
            if not isinstance(k, str) or not k or any(not s for s in k.split(".")):
                raise SpecError(f"{where}.{prefix}{k}", "axis names must be non-empty dotted names")
            name = prefix + k
            if isinstance(v, dict):
                if not v:
                    raise SpecError(f"{where}.{name}", "values must be a non-empty list")
                walk(v, name + ".")
            else:
                if name in out:
                    raise SpecError(f"{where}.{name}", "given twice")
                out[name] = v
    walk(table, "")
    return out


def _check_values(name: str, values, where: str, unique: bool = True) -> list:
    key = f"{where}.{name}"
    if not isinstance(values, (list, tuple, np.ndarray)) or len(values) == 0:
        raise SpecError(key, "values must be a non-empty list")
    values = [_normalize(v, key) for v in values]
    if not unique:
        return values
    seen = {}
    for i, v in enumerate(values):
        c = canonical_json(v)
        if c in seen:
            raise SpecError(key, f"duplicate value {v!r} (positions {seen[c]} and {i})")
        seen[c] = i
    return values


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class Cell:
    """One grid point times one replicate."""

    index: int  # grid point, in expansion order (axes in spec order, then zip groups)
    replicate: int
    params: dict  # nested, fully resolved
    cell_id: str  # depends on the parameters and the replicate only
    seed_key: str  # canonical JSON of the parameters that enter the seed
    root_seed: int
    axis_values: dict = field(default_factory=dict, compare=False)  # flat axis name -> value

    def seed_sequence(self) -> np.random.SeedSequence:
        return derive_seed_sequence(self.root_seed, self.seed_key, self.replicate)

    def flat_params(self) -> dict:
        return flatten(self.params)


def cell_id_for(params: dict, replicate: int) -> str:
    return _hash(canonical_json(params) + f"#r{int(replicate)}", 20)


def seed_key_for(params: dict, seed_ignore) -> str:
    p = copy.deepcopy(params)
    for name in seed_ignore:
        _drop_path(p, name.split("."))
    return canonical_json(p)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep specification (see the module docstring for the format)."""

    task: str
    seed: int
    replicates: int
    params: dict
    axes: dict
    zips: tuple
    seed_ignore: tuple
    name: str | None = None
    description: str | None = None
    source: str | None = field(default=None, compare=False)

    # -- serialisation
    def to_dict(self) -> dict:
        """The normalised spec: ``load_spec(spec.to_dict())`` gives the same spec."""
        sweep = {"task": self.task, "seed": self.seed, "replicates": self.replicates,
                 "seed_ignore": list(self.seed_ignore)}
        if self.name is not None:
            sweep["name"] = self.name
        if self.description is not None:
            sweep["description"] = self.description
        d = {"sweep": sweep, **copy.deepcopy(self.params)}
        if self.axes:
            d["axes"] = copy.deepcopy(self.axes)
        if self.zips:
            d["zip"] = copy.deepcopy(list(self.zips))
        return d

    @property
    def hash(self) -> str:
        """sha256 of the canonical normalised spec (description and name included)."""
        return _hash(canonical_json(self.to_dict()))

    @property
    def label(self) -> str:
        return self.name or (Path(self.source).stem if self.source else "sweep")

    # -- expansion
    def _factors(self):
        factors = []  # each: list of {flat name: value}
        for name, values in self.axes.items():
            factors.append([{name: v} for v in values])
        for z in self.zips:
            names = list(z)
            length = len(z[names[0]])
            factors.append([{n: z[n][i] for n in names} for i in range(length)])
        return factors

    @property
    def n_points(self) -> int:
        return math.prod(len(f) for f in self._factors())

    @property
    def n_cells(self) -> int:
        return self.n_points * self.replicates

    def points(self) -> list[tuple[dict, dict]]:
        """Grid points in expansion order: (nested params, flat axis values)."""
        out = []
        for combo in itertools.product(*self._factors()):
            params = copy.deepcopy(self.params)
            axis_values = {}
            for part in combo:
                for name, v in part.items():
                    _set_path(params, name.split("."), v)
                    axis_values[name] = v
            out.append((params, axis_values))
        return out

    def make_cell(self, params: dict, replicate: int, index: int = -1,
                  axis_values: dict | None = None) -> Cell:
        return Cell(index=index, replicate=int(replicate), params=params,
                    cell_id=cell_id_for(params, replicate),
                    seed_key=seed_key_for(params, self.seed_ignore), root_seed=self.seed,
                    axis_values=axis_values or {})

    def cells(self) -> list[Cell]:
        """Every cell: grid points in expansion order, replicates innermost."""
        return [self.make_cell(p, r, i, av) for i, (p, av) in enumerate(self.points())
                for r in range(self.replicates)]

    def resolve_params(self, params: dict) -> dict:
        """Fixed parameters with ``params`` (nested, or flat dotted names) merged in."""
        params = _normalize(dict(params), "params")
        out = copy.deepcopy(self.params)
        for name, v in params.items():
            _set_path(out, name.split("."), v)
        return out


# ----------------------------------------------------------------------------- loading
def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as exc:  # pragma: no cover
            raise SpecError("", "reading TOML on Python 3.10 needs the 'tomli' package") from exc
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SpecError("", f"spec file not found: {path} (check the path; examples are in "
                            "examples/sweeps/)") from None
    except IsADirectoryError:
        raise SpecError("", f"spec {path} is a folder, not a TOML file (give the .toml file)") \
            from None
    except OSError as exc:
        raise SpecError("", f"cannot read spec file {path}: {exc.strerror or exc} "
                            "(check its permissions)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("", f"{path}: invalid TOML: {exc} (fix the file's syntax)") from None
    except UnicodeDecodeError:
        raise SpecError("", f"{path}: not a UTF-8 text file (give a TOML spec)") from None


def load_spec(spec, *, validate: bool = True) -> SweepSpec:
    """A :class:`SweepSpec` from a TOML path, a dict with the TOML's structure, or a spec.

    Every structural check runs here; with ``validate`` the task's own validator also checks every
    cell's parameters (unknown estimators, bad values ...). Errors are :class:`SpecError` naming
    the offending key.
    """
    if isinstance(spec, SweepSpec):
        return spec
    source = None
    if isinstance(spec, (str, os.PathLike)):
        source = str(spec)
        raw = _read_toml(Path(spec))
    elif isinstance(spec, dict):
        raw = copy.deepcopy(spec)
    else:
        raise SpecError("", "spec must be a TOML path, a dict or a SweepSpec; "
                            f"got {type(spec).__name__}")

    sweep = raw.get("sweep")
    if not isinstance(sweep, dict):
        raise SpecError("sweep", "missing [sweep] table (task, seed, replicates)")
    for k in sweep:
        if k not in SWEEP_KEYS:
            raise SpecError(f"sweep.{k}", f"unknown key (allowed: {', '.join(sorted(SWEEP_KEYS))})")
    task = sweep.get("task", "estimation")
    if not isinstance(task, str) or not task:
        raise SpecError("sweep.task", "must be a task name or 'package.module:function'")
    if "seed" not in sweep:
        raise SpecError("sweep.seed", "required: the root seed, an integer >= 0")
    seed = _normalize(sweep["seed"], "sweep.seed")
    if not _is_int(seed) or seed < 0:
        raise SpecError("sweep.seed", f"must be an integer >= 0; got {seed!r}")
    replicates = _normalize(sweep.get("replicates", 1), "sweep.replicates")
    if not _is_int(replicates) or replicates < 1:
        raise SpecError("sweep.replicates", f"must be an integer >= 1; got {replicates!r}")
    for k in ("name", "description"):
        if k in sweep and not isinstance(sweep[k], str):
            raise SpecError(f"sweep.{k}", "must be a string")

    try:
        task_obj = get_task(task)
    except SpecError:
        raise
    except Exception as exc:  # import error of a user task
        raise SpecError("sweep.task", f"cannot load task {task!r}: {exc}") from None
    seed_ignore = sweep.get("seed_ignore", list(task_obj.seed_ignore))
    if not isinstance(seed_ignore, (list, tuple)) or not all(
            isinstance(s, str) and s and all(s.split(".")) for s in seed_ignore):
        raise SpecError("sweep.seed_ignore", "must be a list of dotted parameter names")

    params = {k: v for k, v in raw.items() if k not in TOP_RESERVED}
    for k in params:
        if "." in k:
            raise SpecError(k, "parameter names may not contain '.'; use tables")
    params = _normalize(params, "")

    axes_raw = raw.get("axes", {})
    axes = {n: _check_values(n, v, "axes") for n, v in _axis_tables(axes_raw, "axes").items()}
    zips_raw = raw.get("zip", [])
    if isinstance(zips_raw, dict):
        zips_raw = [zips_raw]
    if not isinstance(zips_raw, list):
        raise SpecError("zip", "must be a table or an array of tables ([[zip]])")
    zips = []
    for i, z in enumerate(zips_raw):
        where = f"zip[{i}]"
        flat = _axis_tables(z, where)
        if not flat:
            raise SpecError(where, "must name at least one axis")
        zz = {n: _check_values(n, v, where, unique=False) for n, v in flat.items()}
        lengths = {n: len(v) for n, v in zz.items()}
        if len(set(lengths.values())) > 1:
            desc = ", ".join(f"{n} has {m}" for n, m in lengths.items())
            raise SpecError(where, f"zipped axes must have equal lengths; {desc}")
        seen = {}
        for j in range(next(iter(lengths.values()))):
            c = canonical_json([zz[n][j] for n in zz])
            if c in seen:
                raise SpecError(where, f"entries {seen[c]} and {j} are identical")
            seen[c] = j
        zips.append(zz)

    # Axis names: unique, no one a prefix of another, not reserved.
    where_of = {}
    for n in axes:
        where_of[n] = f"axes.{n}"
    for i, z in enumerate(zips):
        for n in z:
            if n in where_of:
                raise SpecError(f"zip[{i}].{n}", f"also an axis at {where_of[n]}")
            where_of[n] = f"zip[{i}].{n}"
    names = sorted(where_of)
    for a in names:
        for b in names:
            if b.startswith(a + "."):
                raise SpecError(where_of[b], f"overlaps the axis {where_of[a]}")
    for n in names:
        if n.split(".")[0] in TOP_RESERVED:
            raise SpecError(where_of[n], f"'{n.split('.')[0]}' is reserved")

    out = SweepSpec(task=task, seed=seed, replicates=replicates, params=params, axes=axes,
                    zips=tuple(zips), seed_ignore=tuple(seed_ignore),
                    name=sweep.get("name"), description=sweep.get("description"), source=source)
    _check_cells(out, where_of, task_obj if validate else None)
    return out


def _origin(key: str, where_of: dict):
    """The axis a failing parameter came from, if any."""
    for name, where in where_of.items():
        if key == name or key.startswith(name + "."):
            return where
    return None


def _check_cells(spec: SweepSpec, where_of: dict, task_obj):
    seen = {}
    for i, (params, axis_values) in enumerate(spec.points()):
        for col in flatten(params):
            if col in RESERVED_COLUMNS:
                raise SpecError(where_of.get(col, col), "is a reserved column name; rename it")
        c = canonical_json(params)
        if c in seen:
            raise SpecError("axes", f"grid points {seen[c]} and {i} have identical parameters")
        seen[c] = i
        if task_obj is None or task_obj.validate is None:
            continue
        try:
            task_obj.validate(params)
        except SpecError as exc:
            where = _origin(exc.key, where_of) or exc.key
            ctx = ", ".join(f"{k}={v!r}" for k, v in axis_values.items())
            raise SpecError(where, exc.message + (f" (in the cell with {ctx})" if ctx else "")) \
                from None
        except (ValueError, TypeError) as exc:
            ctx = ", ".join(f"{k}={v!r}" for k, v in axis_values.items())
            raise SpecError(f"task {spec.task!r}", str(exc) + (f" (in the cell with {ctx})"
                                                           if ctx else "")) from None

"""Results on disk: one parquet shard per finished cell, a manifest, and :func:`load`.

Layout of a sweep directory::

    DIR/manifest.json            spec (normalised), its hash, package version, runs
    DIR/cells/<cell_id>.parquet  one row: parameters, replicate, seed info, metrics, status ...
    DIR/.lock                    held (flock) while a sweep writes to DIR

Shards are written atomically: a temporary file in the same folder, fsync, ``os.replace``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .spec import canonical_json, flatten

__all__ = ["load", "write_shard", "read_shard", "Manifest", "SweepError", "spec_diff"]

MANIFEST = "manifest.json"
CELLS = "cells"
FORMAT = "pluralrlhf-sweep/1"
_TMP_PREFIX = ".tmp-"


class SweepError(ValueError):
    """A sweep directory that cannot be used as asked (different spec, locked, not a sweep)."""


def _fsync_dir(path: Path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover (e.g. Windows)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, writer, *, sync_dir: bool = False) -> None:
    """Call ``writer(fileobj)`` on a temporary file beside ``path``, fsync, then rename.

    A reader never sees a partial file under ``path``. ``sync_dir`` also fsyncs the folder, so
    that the rename itself survives a power cut (for shards that costs a disk flush per cell
    for no gain: a shard lost that way is simply recomputed on resume).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync_dir:
        _fsync_dir(path.parent)


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, lambda f: f.write(
        (json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n").encode()),
        sync_dir=True)


# ----------------------------------------------------------------------------- shards
def shard_path(out_dir, cell_id: str) -> Path:
    return Path(out_dir) / CELLS / f"{cell_id}.parquet"


def write_shard(out_dir, record: dict) -> Path:
    """Write one cell's record (a flat dict) as a one-row parquet file, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([record])
    path = shard_path(out_dir, record["cell_id"])
    atomic_write_bytes(path, lambda f: pq.write_table(table, f))
    return path


def read_shard(path, expected_id: str | None = None):
    """The shard's one-row pyarrow Table, or None if it is unreadable, partial or not the cell
    its name says."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        if table.num_rows != 1 or "cell_id" not in table.column_names:
            return None
        cid = table.column("cell_id")[0].as_py()
        if cid != (expected_id if expected_id is not None else Path(path).stem):
            return None
        if "status" not in table.column_names:
            return None
        return table
    except Exception:
        return None


def _read_many(paths, workers: int = 8):
    if len(paths) < 16:
        return [read_shard(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(read_shard, paths))


def scan(out_dir):
    """``{cell_id: status}`` of readable shards, and the list of bad shard paths."""
    cells = Path(out_dir) / CELLS
    good, bad = {}, []
    if not cells.is_dir():
        return good, bad
    paths = sorted(cells.glob("*.parquet"))
    for p, t in zip(paths, _read_many(paths)):
        if t is None:
            bad.append(p)
        else:
            good[p.stem] = t.column("status")[0].as_py()
    return good, bad


def clean_temporaries(out_dir) -> int:
    """Remove temporary files left by a killed writer; returns how many."""
    n = 0
    for d in (Path(out_dir), Path(out_dir) / CELLS):
        if d.is_dir():
            for p in d.glob(_TMP_PREFIX + "*"):
                try:
                    p.unlink()
                    n += 1
                except OSError:
                    pass
    return n


def load(out_dir, *, status: str | None = None):
    """All finished cells of the sweep in ``out_dir`` as one pandas DataFrame.

    Rows are sorted by grid point (``cell_index``) and ``replicate``; columns are the bookkeeping
    columns (``cell_id``, ``cell_index``, ``replicate``), the parameters (dotted names), the
    metrics, then ``status``, ``error``, ``elapsed_s`` and the seed information. Unreadable shards
    are skipped (a warning says how many). ``status="ok"`` keeps only successful cells.
    """
    import warnings

    import pandas as pd
    import pyarrow as pa

    out_dir = Path(out_dir)
    if not (out_dir / MANIFEST).exists() and not (out_dir / CELLS).is_dir():
        raise SweepError(f"{out_dir} is not a sweep directory (no {MANIFEST})")
    paths = sorted((out_dir / CELLS).glob("*.parquet")) if (out_dir / CELLS).is_dir() else []
    tables = _read_many(paths)
    bad = sum(t is None for t in tables)
    if bad:
        warnings.warn(f"{bad} unreadable shard(s) in {out_dir / CELLS} skipped; "
                      "run the sweep again with resume to recompute them", stacklevel=2)
    tables = [t for t in tables if t is not None]
    if not tables:
        return pd.DataFrame(columns=["cell_id", "cell_index", "replicate", "status"])
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
        df = table.to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        df = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    head = [c for c in ("cell_id", "cell_index", "replicate") if c in df.columns]
    tail = [c for c in ("status", "error", "elapsed_s", "seed", "seed_key", "seed_spawn_key")
            if c in df.columns]
    middle = [c for c in df.columns if c not in head and c not in tail]
    df = df[head + middle + tail]
    df = df.sort_values(["cell_index", "replicate"], kind="stable").reset_index(drop=True)
    if status is not None:
        df = df[df["status"] == status].reset_index(drop=True)
    return df


# --------------------------------------------------------------------------- manifest
def spec_diff(old: dict, new: dict, limit: int = 8) -> list[str]:
    """Human-readable differences between two normalised spec dicts."""
    a, b = flatten(old), flatten(new)
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            out.append(f"{k}: not in the manifest's spec, {b[k]!r} in this spec")
        elif k not in b:
            out.append(f"{k}: {a[k]!r} in the manifest's spec, missing in this spec")
        elif canonical_json(a[k]) != canonical_json(b[k]):
            out.append(f"{k}: {a[k]!r} in the manifest's spec, {b[k]!r} in this spec")
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more"]
    return out


class Manifest:
    """``manifest.json``: what was run, with which code."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / MANIFEST
        self.data: dict = {}

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict:
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise SweepError(f"{self.path} is unreadable ({exc}); move it away to start afresh") \
                from None
        if self.data.get("format") != FORMAT:
            raise SweepError(f"{self.path} is not a {FORMAT} manifest")
        return self.data

    def create(self, spec, n_cells: int):
        import numpy

        from .. import __version__

        self.data = {
            "format": FORMAT,
            "spec_hash": spec.hash,
            "spec": spec.to_dict(),
            "source": spec.source,
            "n_cells": n_cells,
            "package": "pluralrlhf",
            "package_version": __version__,
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "runs": [],
        }
        self.save()

    def check(self, spec):
        """Raise :class:`SweepError` naming the differences if ``spec`` is not the manifest's."""
        if self.data.get("spec_hash") == spec.hash:
            return
        diff = spec_diff(self.data.get("spec", {}), spec.to_dict())
        raise SweepError(
            f"cannot resume {self.path.parent}: the spec differs from the one it was started "
            f"with:\n  " + "\n  ".join(diff or ["(spec hash differs)"])
            + "\nUse another output directory for a different spec.")

    def add_run(self, info: dict):
        self.data.setdefault("runs", []).append(info)
        self.save()

    def update_run(self, info: dict):
        runs = self.data.setdefault("runs", [])
        if runs:
            runs[-1].update(info)
        else:
            runs.append(info)
        self.save()

    def save(self):
        write_json(self.path, self.data)


class DirLock:
    """An exclusive ``flock`` on ``DIR/.lock``: two sweeps never write to one directory at once.
    Released by the OS when the process dies, SIGKILL included."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / ".lock"
        self.fd = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise SweepError(f"another sweep is writing to {self.path.parent} "
                             "(its .lock is held)") from None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def environment_info() -> dict:
    return {"python": platform.python_version(), "platform": sys.platform,
            "host": platform.node(), "pid": os.getpid()}



"""Results on disk: one parquet shard per finished cell, a manifest, and :func:`load`.

Layout of a sweep directory::

    DIR/manifest.json            spec (normalised), its hash, package version, runs
    DIR/cells/<cell_id>.parquet  one row: parameters, replicate, seed info, metrics, status ...
    DIR/.lock                    held (flock) while a sweep writes to DIR

Shards are written atomically: a temporary file in the same folder, fsync, ``os.replace``.

Verified shards. Each shard carries a checksum in its parquet file's key-value metadata (the
Arrow schema metadata), under the key ``pluralrlhf.checksum``: the JSON text
``{"scheme": "sha256/1", "content": HEX, "cell": HEX}`` where

* ``content`` is the sha256 of the row as stored: ``canonical_json(table.to_pylist())`` (column
  names sorted, floats by ``repr``, NaN as ``NaN``) of the one-row table, metadata excluded;
* ``cell`` is the sha256 of ``canonical_json({"task", "params", "replicate", "seed",
  "seed_key"})`` of the cell the shard is for (:func:`cell_digest`): its task, full nested
  parameters, replicate, root seed and seed key.

``resume`` (:func:`scan_verified`) recomputes a shard whose ``content`` digest does not match its
row (edited, e.g. rewritten as valid parquet with a changed metric), whose ``cell`` digest is not
that of the cell of the current spec with its id, or that has no checksum at all (written by an
older version: unverified), and prints one line per such shard. :func:`load` skips a shard whose
content does not match its checksum (with a warning); shards without one are loaded as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import UserError
from .spec import canonical_json, flatten

__all__ = ["load", "write_shard", "read_shard", "Manifest", "SweepError", "spec_diff",
           "cell_digest", "content_digest", "shard_checksum", "verify_shard", "scan_verified",
           "check_out_dir", "CHECKSUM_KEY"]

MANIFEST = "manifest.json"
CELLS = "cells"
FORMAT = "pluralrlhf-sweep/1"
_TMP_PREFIX = ".tmp-"
CHECKSUM_KEY = b"pluralrlhf.checksum"
CHECKSUM_SCHEME = "sha256/1"


class SweepError(UserError):
    """A sweep directory that cannot be used as asked (different spec, locked, not a sweep, not
    writable). A :class:`~simulator.sweep.errors.UserError` (so a ``ValueError``)."""


def check_out_dir(out_dir, *, create: bool = False) -> Path:
    """Raise :class:`SweepError` if ``out_dir`` cannot hold a sweep: a file, under a file, not
    creatable, not writable. With ``create`` also make it (and its ``cells`` folder)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SweepError(f"output {out} is a file, not a folder",
                         hint="give a folder path: a new one or one holding a sweep")
    top = out
    while not top.exists() and top != top.parent:
        top = top.parent
    if top.exists() and not top.is_dir():
        raise SweepError(f"cannot create output folder {out}: {top} is a file",
                         hint="choose a path that is not under a file")
    cells = out / CELLS
    if cells.exists() and not cells.is_dir():
        raise SweepError(f"{cells} is a file, not a folder",
                         hint="move it away or choose another output folder")
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
            cells.mkdir(exist_ok=True)
        except OSError as exc:
            raise SweepError(f"cannot create output folder {out}: {exc.strerror or exc}",
                             hint="choose a writable location") from None
    if top.exists() and not os.access(top, os.W_OK | os.X_OK):
        what = "output folder" if top == out else "folder"
        raise SweepError(f"{what} {top} is not writable",
                         hint="check its permissions or choose another output folder")
    return out


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


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cell_digest(task: str, cell) -> str:
    """sha256 of what defines a cell: task, nested parameters, replicate, root seed, seed key."""
    return _sha256(canonical_json({"task": task, "params": cell.params,
                                   "replicate": int(cell.replicate),
                                   "seed": int(cell.root_seed), "seed_key": cell.seed_key}))


def content_digest(table) -> str:
    """sha256 of a table's rows as stored (``canonical_json`` of ``to_pylist()``; metadata
    excluded)."""
    return _sha256(json.dumps(table.to_pylist(), sort_keys=True, separators=(",", ":"),
                              allow_nan=True, default=repr))


def shard_checksum(table):
    """The checksum dict stored in a shard (see the module docstring), or None if it has none
    or it is unreadable."""
    meta = table.schema.metadata or {}
    raw = meta.get(CHECKSUM_KEY)
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def verify_shard(table, expected_cell: str | None = None) -> str | None:
    """None if ``table`` (a shard) matches its checksum (and, given, the cell digest
    ``expected_cell``); else the reason, in words."""
    info = shard_checksum(table)
    if info is None:
        return "unverified: no checksum (written by an older version, or rewritten)"
    if info.get("scheme") != CHECKSUM_SCHEME:
        return f"unverified: unknown checksum scheme {info.get('scheme')!r}"
    if info.get("content") != content_digest(table):
        return "its content does not match its checksum (edited or corrupt)"
    if expected_cell is not None and info.get("cell") != expected_cell:
        return "its checksum is for other cell parameters than this spec's"
    return None


def _content_mismatch(table) -> bool:
    """True if ``table`` has a checksum of this scheme that its content does not match."""
    info = shard_checksum(table)
    return (info is not None and info.get("scheme") == CHECKSUM_SCHEME
            and info.get("content") != content_digest(table))


def write_shard(out_dir, record: dict, *, cell_checksum: str | None = None) -> Path:
    """Write one cell's record (a flat dict) as a one-row parquet file, atomically, with its
    checksum (``cell_checksum``: :func:`cell_digest` of its cell; see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([record])
    info = {"scheme": CHECKSUM_SCHEME, "content": content_digest(table), "cell": cell_checksum}
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), CHECKSUM_KEY: canonical_json(info).encode()})
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


def scan_verified(out_dir, expected: dict):
    """Like :func:`scan`, checksums verified: ``(good, bad, rejected)`` where ``good`` is
    ``{cell_id: status}`` of the shards that pass, ``bad`` the unreadable shard paths and
    ``rejected`` ``[(path, reason)]`` of readable shards of cells in ``expected``
    (``{cell_id: cell_digest}``) that fail verification. Shards of other cells (not in this
    spec) are left alone (:func:`load` still skips them if their content does not match)."""
    cells = Path(out_dir) / CELLS
    good, bad, rejected = {}, [], []
    if not cells.is_dir():
        return good, bad, rejected
    paths = sorted(cells.glob("*.parquet"))
    for p, t in zip(paths, _read_many(paths)):
        if t is None:
            bad.append(p)
            continue
        reason = verify_shard(t, expected[p.stem]) if p.stem in expected else None
        if reason is not None:
            rejected.append((p, reason))
        else:
            good[p.stem] = t.column("status")[0].as_py()
    return good, bad, rejected


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
    and shards whose content does not match their checksum are skipped (a warning says how
    many). ``status="ok"`` keeps only successful cells.
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
    tampered = [t for t in tables if _content_mismatch(t)]
    if tampered:
        warnings.warn(f"{len(tampered)} shard(s) in {out_dir / CELLS} whose content does not "
                      "match their checksum skipped; run the sweep again with resume to "
                      "recompute them", stacklevel=2)
        ids = {id(t) for t in tampered}
        tables = [t for t in tables if id(t) not in ids]
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
            raise SweepError(f"{self.path} is not a {FORMAT} manifest",
                             hint="that folder holds something else; choose another output "
                                  "folder")
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
            f"with: " + "; ".join(diff or ["(spec hash differs)"]),
            hint="use another output directory for a different spec")

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
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SweepError(f"cannot create the lock file {self.path}: {exc.strerror or exc}",
                             hint="the output folder must be writable; check its permissions "
                                  "or choose another") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise SweepError(f"another sweep is writing to {self.path.parent} "
                             "(its .lock is held)",
                             hint="wait for it to finish, or use another output folder") \
                from None
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



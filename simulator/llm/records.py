"""Plain local datasets: JSON lines, one record (dict) per line, and JSON documents.

The one JSON writer and reader of the LLM module: every stage writes its outputs with
:func:`write_jsonl` / :func:`write_json` and the next stage reads them with :func:`read_jsonl` /
:func:`read_json`, so any stage can be rerun or inspected with ordinary tools.  numpy scalars and
arrays are written as JSON numbers and lists; a path ending in ``.gz`` is gzip-compressed.
"""

from __future__ import annotations

import gzip
import json
import pathlib

import numpy as np


def _default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _open(p: pathlib.Path, mode: str):
    if p.suffix == ".gz":
        return gzip.open(p, mode + "t", encoding="utf-8")
    return p.open(mode, encoding="utf-8")


def write_jsonl(path: str | pathlib.Path, records: list) -> pathlib.Path:
    """Write ``records`` (list of dicts) to ``path``, creating parent folders (``.gz``:
    gzip-compressed)."""
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with _open(p, "w") as fh:
        for r in records:
            fh.write(json.dumps(r, default=_default) + "\n")
    return p


def read_jsonl(path: str | pathlib.Path) -> list:
    """Read a JSON-lines file written by :func:`write_jsonl` (``.gz``: gzip-compressed)."""
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: run the stage that writes it first")
    with _open(p, "r") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_json(path: str | pathlib.Path, obj) -> pathlib.Path:
    """Write ``obj`` as indented JSON to ``path``, creating parent folders."""
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=2, default=_default))
    return p


def read_json(path: str | pathlib.Path):
    """Read a JSON document written by :func:`write_json`."""
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: run the stage that writes it first")
    return json.loads(p.read_text())

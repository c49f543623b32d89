"""Plain local datasets: JSON lines, one record (dict) per line.

Every stage writes its outputs with :func:`write_jsonl` and the next stage reads them with
:func:`read_jsonl`, so any stage can be rerun or inspected with ordinary tools.
"""

from __future__ import annotations

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


def write_jsonl(path: str | pathlib.Path, records: list) -> pathlib.Path:
    """Write ``records`` (list of dicts) to ``path``, creating parent folders."""
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w") as fh:
        for r in records:
            fh.write(json.dumps(r, default=_default) + "\n")
    return p


def read_jsonl(path: str | pathlib.Path) -> list:
    """Read a JSON-lines file written by :func:`write_jsonl`."""
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: run the stage that writes it first")
    with p.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_json(path: str | pathlib.Path, obj) -> pathlib.Path:
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=2, default=_default))
    return p


def read_json(path: str | pathlib.Path):
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: run the stage that writes it first")
    return json.loads(p.read_text())

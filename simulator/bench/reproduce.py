"""``bench reproduce``: wall time of ``python -m simulator reproduce --size quick`` (minutes).

Only when named explicitly (``bench reproduce``), never under ``all``. Issue #7 target: under
5 minutes on 2 cores. Runs in a fresh process into a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from . import format_table, print_targets, register


@register("reproduce", explicit=True)
def run(quick: bool = False, seed: int = 0, out=print, size: str = "quick", limit_s: float = 300.0,
        timeout_s: float = 3600.0):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "simulator", "reproduce", "--size", size, "--out", tmp]
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  check=False, env={**os.environ})
            rc = proc.returncode
            tail = (proc.stdout + proc.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            rc, tail = None, f"timed out after {timeout_s:.0f} s"
        sec = time.perf_counter() - t
    row = dict(command=" ".join(cmd[1:]), seconds=sec, returncode=rc, cores=os.cpu_count())
    out(format_table([row], [("command", "command", "{}"), ("seconds", "seconds", "{:.1f}"),
                             ("returncode", "rc", "{}"), ("cores", "cores", "{}")]))
    if rc != 0:
        out(tail)
    row["targets"] = print_targets([
        (f"quick reproduce under {limit_s / 60:.0f} minutes on {os.cpu_count()} cores",
         rc == 0 and sec <= limit_s)], out)
    return [row]

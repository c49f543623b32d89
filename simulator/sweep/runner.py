"""Run a sweep: expand the spec, skip finished cells, execute the rest, write shards as they come.

:func:`run_sweep` is the one entry point the CLI, the figure scripts and the tests call;
:func:`run_cell` recomputes a single cell alone, with the same numbers.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .errors import UserError
from .execute import execute
from .spec import RESERVED_COLUMNS, Cell, SpecError, load_spec
from .store import (
    CELLS,
    DirLock,
    Manifest,
    SweepError,
    cell_digest,
    check_out_dir,
    clean_temporaries,
    environment_info,
    load,
    scan_verified,
    write_shard,
)

__all__ = ["run_sweep", "run_cell", "preflight", "EXECUTORS"]

EXECUTORS = ("serial", "process", "dask")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def _job(spec, cell: Cell, threads: int) -> dict:
    return {"task": spec.task, "params": cell.params, "cell_id": cell.cell_id,
            "root_seed": cell.root_seed, "seed_key": cell.seed_key,
            "replicate": cell.replicate, "threads": int(threads)}


def _failed(cell: Cell, message: str) -> dict:
    return {"cell_id": cell.cell_id, "status": "failed", "error": message,
            "elapsed_s": float("nan"),
            "metrics": {}}


def make_record(cell: Cell, result: dict) -> dict:
    """The flat row stored for a cell: ids, parameters, metrics, status and seed information."""
    rec = {"cell_id": cell.cell_id, "cell_index": int(cell.index), "replicate": int(cell.replicate)}
    for k, v in cell.flat_params().items():
        rec[k] = None if v == {} else v
    status, error = result["status"], result["error"]
    metrics = result.get("metrics") or {}
    clash = sorted(k for k in metrics if k in rec or k in RESERVED_COLUMNS)
    if clash:
        status = "failed"
        error = f"metric name(s) {clash} collide with parameter or bookkeeping columns"
        metrics = {}
    rec.update(metrics)
    ss = cell.seed_sequence()
    rec.update({"status": status, "error": error, "elapsed_s": float(result["elapsed_s"]),
                "seed": int(cell.root_seed), "seed_key": cell.seed_key,
                "seed_spawn_key": ",".join(str(int(k)) for k in ss.spawn_key)})
    return rec


# --------------------------------------------------------------------------- executors
def _run_serial(spec, cells, threads, on_result, **_):
    for cell in cells:
        on_result(cell, execute(_job(spec, cell, threads)))


def _run_process(spec, cells, threads, on_result, workers, **_):
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from .execute import worker_init

    ctx = mp.get_context("spawn")  # fork after threads (BLAS, numba, tqdm) can deadlock

    def new_pool():
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init,
                                   initargs=(threads, os.getpid()))

    queue = list(reversed(cells))  # pop() from the end: cells go out in grid order
    window = 2 * workers
    pending = {}
    # Cells in flight when a worker died are suspects: each is rerun alone, so the culprit is
    # identified (and recorded as failed) without failing its innocent neighbours.
    suspects = []
    struck = set()
    state = {"broken": False}

    def handle(fut):
        cell = pending.pop(fut)
        try:
            res = fut.result()
        except BrokenProcessPool:
            state["broken"] = True
            if cell.cell_id not in struck:
                struck.add(cell.cell_id)
                suspects.append(cell)
                return
            res = _failed(cell, "worker process died while running this cell alone "
                                "(e.g. a segfault, os._exit or out of memory)")
        except Exception as exc:  # e.g. unpicklable parameters
            res = _failed(cell, f"{type(exc).__name__}: {exc}")
        on_result(cell, res)

    pool = new_pool()
    clean_exit = False
    try:
        while queue or pending or suspects:
            state["broken"] = False
            try:
                if not suspects:
                    while queue and len(pending) < window:
                        cell = queue.pop()
                        pending[pool.submit(execute, _job(spec, cell, threads))] = cell
                elif not pending:
                    cell = suspects.pop(0)
                    pending[pool.submit(execute, _job(spec, cell, threads))] = cell
            except BrokenProcessPool:
                (suspects if cell.cell_id in struck else queue).append(cell)
                state["broken"] = True
            if pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    handle(fut)
                if state["broken"] and pending:  # all of them end once the pool is broken
                    done, _ = wait(pending)
                    for fut in done:
                        handle(fut)
            if state["broken"]:
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
        clean_exit = True
    finally:
        pool.shutdown(wait=clean_exit, cancel_futures=True)


def _dask_client(scheduler, workers):
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover
        raise SweepError("executor 'dask' needs dask[distributed] "
                         "(pip install 'pluralrlhf[dask]')") from exc
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        return client, [client, cluster]
    if isinstance(scheduler, (str, os.PathLike)):
        s = str(scheduler)
        client = Client(scheduler_file=s) if s.endswith(".json") and os.path.exists(s) \
            else Client(s)
        return client, [client]
    if hasattr(scheduler, "submit"):  # a distributed.Client
        return scheduler, []
    if hasattr(scheduler, "scheduler_address"):  # a cluster object
        client = Client(scheduler)
        return client, [client]
    raise SweepError(f"scheduler must be an address, a scheduler file, a Client or a cluster; "
                     f"got {type(scheduler).__name__}")


def _run_dask(spec, cells, threads, on_result, workers, scheduler=None, **_):
    from distributed import as_completed

    client, owned = _dask_client(scheduler, workers)
    pending = {}
    try:
        try:
            slots = sum(client.nthreads().values())
        except Exception:  # pragma: no cover
            slots = workers
        window = max(4, 2 * max(1, slots))
        queue = list(reversed(cells))
        ac = as_completed()

        def submit_more():
            while queue and len(pending) < window:
                cell = queue.pop()
                fut = client.submit(execute, _job(spec, cell, threads), pure=False,
                                    key=f"sweep-{cell.cell_id}-{os.getpid()}-{time.time_ns()}")
                pending[fut] = cell
                ac.add(fut)

        submit_more()
        for fut in ac:
            cell = pending.pop(fut)
            try:
                res = fut.result()
            except Exception as exc:  # KilledWorker, lost connection ...
                res = _failed(cell, f"{type(exc).__name__}: {exc}")
            on_result(cell, res)
            submit_more()
    finally:
        for fut in pending:
            fut.cancel()
        for obj in owned:
            try:
                obj.close()
            except Exception:  # pragma: no cover
                pass


_RUNNERS = {"serial": _run_serial, "process": _run_process, "dask": _run_dask}


# -------------------------------------------------------------------------------- API
def check_options(executor="process", scheduler=None, workers=None, threads=1) -> str:
    """The executor to use; :class:`UserError` (a ``ValueError``) for bad run options."""
    if scheduler is not None and executor == "process":
        executor = "dask"
    if executor not in EXECUTORS:
        raise UserError(f"executor must be one of {EXECUTORS}; got {executor!r}")
    if scheduler is not None and executor != "dask":
        raise UserError(f"a scheduler needs executor 'dask'; got {executor!r}",
                        hint="drop --executor or use --executor dask")
    if workers is not None and (not _is_int(workers) or workers < 1):
        raise UserError(f"workers must be an integer >= 1; got {workers!r}")
    if not _is_int(threads) or threads < 1:
        raise UserError(f"threads must be an integer >= 1; got {threads!r}")
    return executor


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_manifest(spec, out_dir: Path, manifest: Manifest, resume: bool):
    if manifest.exists():
        manifest.read()
        if not resume:
            raise SweepError(f"{out_dir} already holds a sweep ({manifest.path.name}); "
                             "pass resume=True (--resume) to continue it, or choose "
                             "another directory")
        manifest.check(spec)
    elif any((out_dir / CELLS).glob("*.parquet")):
        raise SweepError(f"{out_dir / CELLS} holds shards but {out_dir} has no manifest; "
                         "choose another directory")


def preflight(spec_or_path, out_dir, resume: bool | None = False) -> bool:
    """Every check :func:`run_sweep` makes before it writes anything (the spec, the output
    folder, the manifest against the spec), writing nothing; returns whether ``out_dir``
    already holds a sweep. ``resume=None``: do not check a sweep found there against the spec.
    Raises :class:`SpecError` / :class:`SweepError`."""
    spec = load_spec(spec_or_path)
    out_dir = check_out_dir(out_dir)
    if not out_dir.is_dir():
        return False
    manifest = Manifest(out_dir)
    if resume is None:
        if manifest.exists():
            manifest.read()
            return True
        _check_manifest(spec, out_dir, manifest, False)
        return False
    _check_manifest(spec, out_dir, manifest, resume)
    return manifest.exists()


MAX_SHARD_LINES = 20


def _report_rejected(out_dir: Path, bad, rejected):
    """One line per shard that is recomputed for being unreadable or failing verification."""
    lines = [f"{p}: unreadable, partial or not the cell its name says; recomputing it"
             for p in bad]
    lines += [f"{p}: {reason}; recomputing it" for p, reason in rejected]
    if not lines:
        return
    if len(lines) > MAX_SHARD_LINES:
        lines = lines[:MAX_SHARD_LINES] + [
            f"... and {len(lines) - MAX_SHARD_LINES} more shard(s) in {out_dir / CELLS} "
            "recomputed"]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _progress_bar(total, label, enabled):
    from tqdm.auto import tqdm

    disable = (not enabled) or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    return tqdm(total=total, desc=label, unit="cell", file=sys.stderr, disable=disable,
                smoothing=0.1)


def run_sweep(spec_or_path, out_dir, workers: int | None = None, executor: str = "process",
              scheduler=None, resume: bool = False, progress: bool = True, threads: int = 1,
              where: dict | None = None):
    """Run every cell of a sweep that is not finished yet and return all results.

    Parameters
    ----------
    spec_or_path : path to a TOML spec, a dict with the same structure, or a SweepSpec
    out_dir : folder for ``manifest.json`` and the shards (created if needed)
    workers : process-pool / LocalCluster workers; default one per available core
    executor : "process" (default), "serial" or "dask"
    scheduler : Dask scheduler address, scheduler file, Client or cluster (implies "dask");
        with ``executor="dask"`` and none, a LocalCluster of ``workers`` processes
    resume : continue a sweep in ``out_dir`` (its spec must be this spec): finished cells are
        skipped; failed, missing, partial and corrupt ones are (re)computed. Without a
        manifest in ``out_dir`` it simply starts.
    progress : tqdm bar on stderr (only when it is a terminal) and a closing summary
    threads : BLAS / numba threads per cell, on every executor (results are bit-for-bit
        identical across executors and worker counts at equal ``threads``)
    where : run only part of the grid: axis name (or ``"replicate"``) -> value(s), e.g.
        ``{"N": 10000}`` (:mod:`simulator.sweep.select`). The folder and its manifest are the
        whole grid's; cells keep their ids and seeds, so a later run without ``where`` (with
        ``resume``) skips them and computes the rest.

    Returns
    -------
    pandas.DataFrame of every finished cell in ``out_dir`` (see :func:`simulator.sweep.load`);
    its ``attrs["summary"]`` holds the counts of this run (``not_selected``: cells left out by
    ``where``; ``complete``: whether every cell of the grid is now finished).
    """
    from .select import describe_where, select_cells

    executor = check_options(executor, scheduler, workers, threads)
    spec = load_spec(spec_or_path)  # every check before anything is written
    cells = spec.cells()
    selected = select_cells(spec, cells, where)  # a bad selection is refused before any write
    out_dir = check_out_dir(out_dir, create=True)
    workers = workers or default_workers()

    t0 = time.perf_counter()
    with DirLock(out_dir):
        manifest = Manifest(out_dir)
        _check_manifest(spec, out_dir, manifest, resume)
        if manifest.exists():
            old_version = manifest.data.get("package_version")
            if old_version != _version():
                import warnings

                warnings.warn(f"resuming a sweep started with pluralrlhf {old_version} under "
                              f"{_version()}: cells computed by the two versions are mixed",
                              stacklevel=2)
        if not manifest.exists():
            manifest.create(spec, len(cells))
        clean_temporaries(out_dir)
        digests = {c.cell_id: cell_digest(spec.task, c) for c in cells}
        existing, bad, rejected = scan_verified(out_dir, digests)
        # partial / corrupt / misnamed / failing their checksum / unverified: recomputed
        for p in bad + [p for p, _ in rejected]:
            try:
                p.unlink()
            except OSError:
                pass
        _report_rejected(out_dir, bad, rejected)
        todo = [c for c in selected if existing.get(c.cell_id) != "ok"]
        not_selected = len(cells) - len(selected)
        skipped = len(selected) - len(todo)
        n_workers = 1 if executor == "serial" else max(1, min(workers, len(todo) or 1))
        manifest.add_run({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          "executor": executor, "workers": n_workers, "threads": threads,
                          "resume": bool(resume), "package_version": _version(),
                          "to_compute": len(todo),
                          **({"where": describe_where(where)} if not_selected else {}),
                          **environment_info()})

        counts = {"done": 0, "failed": 0}
        failures = []
        bar = _progress_bar(len(todo), spec.label, progress)

        def on_result(cell, result):
            rec = make_record(cell, result)
            write_shard(out_dir, rec, cell_checksum=digests.get(cell.cell_id))
            if rec["status"] == "ok":
                counts["done"] += 1
            else:
                counts["failed"] += 1
                failures.append((cell, rec["error"]))
            bar.update(1)
            if counts["failed"]:
                bar.set_postfix(failed=counts["failed"], refresh=False)

        interrupted = False
        try:
            if todo:
                _RUNNERS[executor](spec, todo, threads, on_result, workers=n_workers,
                                   scheduler=scheduler)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            bar.close()
            elapsed = time.perf_counter() - t0
            summary = {"cells": len(cells), "computed": counts["done"], "failed": counts["failed"],
                       "skipped": skipped, "recomputed_corrupt": len(bad),
                       "recomputed_unverified": len(rejected),
                       "not_run": len(todo) - counts["done"] - counts["failed"],
                       "not_selected": not_selected,
                       "elapsed_s": round(elapsed, 3), "interrupted": interrupted}
            try:
                manifest.update_run({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **summary})
            except OSError:  # pragma: no cover
                pass
            if progress:
                _print_summary(spec, out_dir, summary, failures, executor, n_workers)
    df = load(out_dir)
    ok = set(df.loc[df["status"] == "ok", "cell_id"]) if len(df) else set()
    summary["complete"] = all(c.cell_id in ok for c in cells)
    df.attrs["summary"] = summary
    return df


def _version():
    from .. import __version__

    return __version__


def _print_summary(spec, out_dir, s, failures, executor, workers):
    parts = [f"{s['computed']} computed", f"{s['skipped']} already done", f"{s['failed']} failed"]
    if s["recomputed_corrupt"]:
        parts.append(f"{s['recomputed_corrupt']} corrupt shard(s) redone")
    if s.get("recomputed_unverified"):
        parts.append(f"{s['recomputed_unverified']} shard(s) failing verification redone")
    if s["not_run"]:
        parts.append(f"{s['not_run']} not run")
    if s.get("not_selected"):
        parts.append(f"{s['not_selected']} outside --where")
    head = "interrupted" if s["interrupted"] else "finished"
    lines = [f"sweep {spec.label} {head}: {s['cells']} cells: " + ", ".join(parts)
             + f" in {s['elapsed_s']:.1f} s ({executor}, {workers} worker"
             + ("s" if workers != 1 else "") + f") -> {out_dir}"]
    for cell, err in failures[:5]:
        first = (err or "").strip().splitlines()[0] if err else ""
        where = ", ".join(f"{k}={v!r}" for k, v in cell.axis_values.items())
        lines.append(f"  failed: cell {cell.index} replicate {cell.replicate}"
                     + (f" ({where})" if where else "") + f": {first}")
    if len(failures) > 5:
        lines.append(f"  ... and {len(failures) - 5} more failed (see the 'error' column); "
                     "--resume recomputes failed cells")
    print("\n".join(lines), file=sys.stderr, flush=True)


def run_cell(spec, params: dict, replicate: int = 0, *, threads: int = 1,
             raise_errors: bool = True) -> dict:
    """Recompute one cell alone: the same record (parameters, metrics, seed info) a sweep stores.

    ``params`` are the cell's axis values (flat dotted names or nested), merged into the spec's
    fixed parameters; passing a cell's full parameters works too.
    """
    spec = load_spec(spec)
    full = spec.resolve_params(params)
    from .registry import get_task
    from .spec import canonical_json

    task = get_task(spec.task)
    if task.validate is not None:
        task.validate(full)
    if not isinstance(replicate, int) or replicate < 0:
        raise SpecError("replicate", f"must be an integer >= 0; got {replicate!r}")
    target = canonical_json(full)
    index, axis_values = -1, {}
    for i, (p, av) in enumerate(spec.points()):
        if canonical_json(p) == target:
            index, axis_values = i, av
            break
    cell = spec.make_cell(full, replicate, index, axis_values)
    rec = make_record(cell, execute(_job(spec, cell, threads)))
    if raise_errors and rec["status"] != "ok":
        raise RuntimeError(f"cell failed: {rec['error']}")
    return rec

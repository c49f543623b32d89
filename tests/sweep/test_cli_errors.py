"""The command line never shows a traceback for a user error: one line on stderr, exit code 2.

A table of bad invocations through :func:`simulator.cli.main` (the function ``python -m
simulator`` runs), a few through a real ``python -m simulator`` process, unwritable folders,
``sweep --dry-run`` checking every cell without fitting, and the one-line report of failed cells
with ``--no-progress``.
"""

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simulator.cli import main as cli_main
from simulator.sweep import SweepError, run_sweep
from simulator.sweep.check import check_spec
from simulator.sweep.errors import UserError, describe_os_error
from simulator.sweep.store import DirLock

ROOT = Path(__file__).resolve().parents[2]

TOY = """
n = 3
[sweep]
task = "tests.sweep.toy_task:toy"
seed = 1
[axes]
x = [1.0, 2.0]
"""

EST = """
n = 60
metrics = ["l2_error"]
[sweep]
task = "estimation"
seed = 3
[population]
regime = "shared"
d = 2
k = 2
proportions = [0.3, 0.7]
[estimators.{label}]
class = "{cls}"
{hyper}
"""


def write(path: Path, text) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A folder of good and bad inputs (paths by name), and one finished toy sweep."""
    base = tmp_path_factory.mktemp("cli_errors")
    write(base / "toy.toml", TOY)
    write(base / "toy_other.toml", TOY.replace("n = 3", "n = 4"))
    write(base / "bad.toml", "[sweep\ntask = 'tests.sweep.toy_task:toy'\n")
    write(base / "binary.toml", b"\xff\xfe\x00\x81 not text")
    write(base / "nosweep.toml", "n = 3\n")
    write(base / "rep0.toml", "[sweep]\ntask = 'tests.sweep.toy_task:toy'\nseed = 1\nreplicates = 0\n")
    write(base / "badtask.toml", "[sweep]\ntask = 'no_such_task'\nseed = 1\n")
    write(base / "badparam.toml", TOY.replace("n = 3", "n = 3\nspeed = 2"))
    write(base / "est_unknown.toml", EST.format(label="e", cls="NoSuchEstimator", hyper=""))
    write(base / "est_badhyper.toml", EST.format(label="e", cls="PooledMLE", hyper="lamb = 1"))
    write(base / "est_kd.toml", EST.format(label="sr", cls="SharedRep", hyper="k = 3"))
    write(base / "afile", "just a file\n")
    (base / "adir").mkdir()
    (base / "notsweep").mkdir()
    (base / "notsweep" / "notes.txt").write_text("hello\n")
    (base / "badmanifest").mkdir()
    (base / "badmanifest" / "manifest.json").write_text("{ not json")
    (base / "cellsfile").mkdir()
    (base / "cellsfile" / "cells").write_text("in the way\n")
    run_sweep(base / "toy.toml", base / "done", executor="serial", progress=False)
    return base


# (argv with {d} for the folder above, a piece of the expected message)
BAD = [
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["sweep"], "the following arguments are required"),
    (["sweep", "{d}/toy.toml"], "--out"),
    (["sweep", "{d}/missing.toml", "--out", "{d}/o"], "spec file not found"),
    (["sweep", "{d}/adir", "--out", "{d}/o"], "is a folder, not a TOML file"),
    (["sweep", "{d}/bad.toml", "--out", "{d}/o"], "invalid TOML"),
    (["sweep", "{d}/binary.toml", "--out", "{d}/o"], "not a UTF-8 text file"),
    (["sweep", "{d}/nosweep.toml", "--out", "{d}/o"], "missing [sweep] table"),
    (["sweep", "{d}/rep0.toml", "--out", "{d}/o"], "sweep.replicates: must be an integer >= 1"),
    (["sweep", "{d}/badtask.toml", "--out", "{d}/o"], "unknown task 'no_such_task'"),
    (["sweep", "{d}/badparam.toml", "--out", "{d}/o"], "speed: unknown parameter for task"),
    (["sweep", "{d}/est_unknown.toml", "--out", "{d}/o"], "unknown estimator 'NoSuchEstimator'"),
    (["sweep", "{d}/est_badhyper.toml", "--out", "{d}/o"], "estimators.e.lamb: unknown hyper"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/afile"], "is a file, not a folder"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/afile/sub"], "afile is a file"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/cellsfile"], "cells is a file, not a folder"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/nope", "--resume"], "does not exist"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/notsweep", "--resume"], "is not a sweep folder"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/afile", "--resume"], "is a file, not a sweep"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/badmanifest", "--resume"], "is unreadable"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/done"], "already holds a sweep"),
    (["sweep", "{d}/toy_other.toml", "--out", "{d}/done", "--resume"],
     "n: 3 in the manifest's spec, 4 in this spec"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/o", "--workers", "0"], "workers must be"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/o", "--workers", "two"], "invalid int value"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/o", "--threads", "0"], "threads must be"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/o", "--executor", "gpu"], "invalid choice: 'gpu'"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/o", "--executor", "serial",
      "--scheduler", "tcp://127.0.0.1:1"], "a scheduler needs executor 'dask'"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/afile", "--dry-run"], "is a file, not a folder"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/nope", "--dry-run", "--resume"], "does not exist"),
    (["sweep", "{d}/toy_other.toml", "--out", "{d}/done", "--dry-run", "--resume"],
     "the spec differs"),
    (["sweep", "{d}/bad.toml", "--out", "{d}/o", "--dry-run"], "invalid TOML"),
    (["reproduce", "--only", "fig99", "--out", "{d}/r"], "unknown figure"),
    (["reproduce", "--size", "huge"], "invalid choice: 'huge'"),
    (["reproduce", "--only", "fig1", "--size", "tiny", "--out", "{d}/afile"], "afile is a file"),
    (["bench", "nosuch"], "unknown benchmark"),
    (["bench", "mle", "--json", "{d}/nodir/rows.json"], "does not exist"),
    (["bench", "mle", "--json", "{d}/adir"], "is a folder"),
    (["bench", "--seed", "x"], "invalid int value"),
    (["warmup", "extra"], "unrecognized arguments"),
    (["llm"], "the following arguments are required"),
    (["llm", "generate", "--config", "{d}/missing.toml"], "bad config value"),
]


def _fill(argv, d):
    return [a.replace("{d}", str(d)) for a in argv]


def assert_one_line_error(rc, err, expected=None):
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    if expected is not None:
        assert expected in lines[0], err
    return lines[0]


@pytest.mark.parametrize("argv, expected", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_bad_invocations_print_one_line_and_exit_2(d, capsys, argv, expected):
    assert len(BAD) >= 20
    rc = cli_main(_fill(argv, d))
    err = capsys.readouterr().err
    line = assert_one_line_error(rc, err, expected)
    assert line.startswith(("error: ", "pluralrlhf")), line
    assert not (d / "o").exists()  # a refused sweep writes nothing


def test_a_locked_sweep_folder_is_one_line(d, capsys):
    with DirLock(d / "done"):
        rc = cli_main(["sweep", str(d / "toy.toml"), "--out", str(d / "done"), "--resume",
                       "--no-progress"])
    assert_one_line_error(rc, capsys.readouterr().err, "another sweep is writing")


@pytest.mark.parametrize("argv, expected", [
    (["sweep", "{d}/toy.toml", "--out", "{d}/afile"], "is a file, not a folder"),
    (["sweep", "{d}/toy.toml", "--out", "{d}/nope", "--resume"], "does not exist"),
    (["sweep", "{d}/bad.toml", "--out", "{d}/o"], "invalid TOML"),
    (["sweep", "{d}/est_kd.toml", "--out", "{d}/kd", "--no-progress", "--executor", "serial"],
     None),
])
def test_a_real_process_shows_no_traceback(d, argv, expected):
    proc = subprocess.run([sys.executable, "-m", "simulator", *_fill(argv, d)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    if expected is None:  # every cell fails at run time (k > d): exit 1 and the first error
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "all 1 computed cell(s) failed" in lines[0], proc.stderr
        assert "k must be <= d = 2; got k = 3" in lines[0]
        return
    assert_one_line_error(proc.returncode, proc.stderr, expected)


# ----------------------------------------------------------------- unwritable folders
@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permissions are not enforced for root")
def test_read_only_folders_are_user_errors(d, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc = cli_main(["sweep", str(d / "toy.toml"), "--out", str(ro / "sub")])
        assert_one_line_error(rc, capsys.readouterr().err, "cannot create output folder")
        rc = cli_main(["sweep", str(d / "toy.toml"), "--out", str(ro)])
        assert_one_line_error(rc, capsys.readouterr().err, "is not writable")
    finally:
        ro.chmod(0o755)


def test_permission_errors_are_one_line(d, tmp_path, capsys, monkeypatch):
    """Read-only folders, simulated (the suite may run as root, which permissions do not stop)."""
    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    with monkeypatch.context() as m:
        m.setattr(Path, "mkdir", denied)
        rc = cli_main(["sweep", str(d / "toy.toml"), "--out", str(tmp_path / "new")])
    line = assert_one_line_error(rc, capsys.readouterr().err, "cannot create output folder")
    assert "Permission denied" in line and "choose a writable location" in line

    existing = tmp_path / "existing"
    existing.mkdir()
    with monkeypatch.context() as m:
        m.setattr(os, "access", lambda *a, **k: False)
        rc = cli_main(["sweep", str(d / "toy.toml"), "--out", str(existing)])
    assert_one_line_error(rc, capsys.readouterr().err, "is not writable")
    assert not (existing / "manifest.json").exists()

    def read_only_fs(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(existing / "manifest.json"))

    with monkeypatch.context() as m:
        m.setattr("simulator.sweep.runner.run_sweep", read_only_fs)
        rc = cli_main(["sweep", str(d / "toy.toml"), "--out", str(existing)])
    line = assert_one_line_error(rc, capsys.readouterr().err, "Read-only file system")
    assert "manifest.json" in line and "choose another path" in line


def test_user_error_and_os_error_wording():
    assert str(UserError("x is bad", hint="use y")) == "x is bad (use y)"
    assert isinstance(SweepError("z"), (UserError, ValueError))
    msg = describe_os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "/a/b"))
    assert msg == "cannot use '/a/b': No such file or directory (check the path)"


def test_a_bug_still_raises(d, monkeypatch):
    """Programming errors are not swallowed: only user errors become one line."""
    def bug(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("simulator.sweep.runner.run_sweep", bug)
    with pytest.raises(KeyError):
        cli_main(["sweep", str(d / "toy.toml"), "--out", str(d / "o")])


# ------------------------------------------------------------------------------ dry run
def test_dry_run_catches_k_greater_than_d_without_running(tmp_path, capsys):
    spec = write(tmp_path / "kd.toml", EST.format(label="sr", cls="SharedRep", hyper="k = 1")
                 + '[axes]\n"estimators.sr.k" = [1, 3]\n"population.d" = [2, 4]\n')
    out = tmp_path / "out"
    rc = cli_main(["sweep", str(spec), "--out", str(out), "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert "1 of 4 grid points cannot run" in lines[0]
    assert len(lines) == 2
    assert "cell 2 (estimators.sr.k=3, population.d=2): estimators.sr: k must be <= d = 2" \
        in lines[1]
    assert not out.exists()
    # the same spec without the bad cell passes and says so
    spec.write_text(spec.read_text().replace("[1, 3]", "[1, 2]"))
    assert cli_main(["sweep", str(spec), "--out", str(out), "--dry-run"]) == 0
    assert "4 cells" in capsys.readouterr().out
    assert not out.exists()


def test_dry_run_catches_more_clusters_than_users_and_unknown_names(tmp_path):
    spec = {"sweep": {"task": "estimation", "seed": 1}, "n": 50, "metrics": ["l2_error"],
            "population": {"regime": "shared", "d": 3, "k": 2, "proportions": [0.5, 0.5]},
            "estimators": {"em": {"class": "EMMixture", "n_clusters": 2}},
            "axes": {"estimators.em.n_clusters": [2, 3, 7]}}
    _, problems = check_spec(spec)
    assert [p.index for p in problems] == [1, 2]
    assert all(p.key == "estimators.em" and "too few users" in p.message for p in problems)
    spec["axes"] = {"estimators": [{"em": {"class": "EMMixture", "n_clusters": 2}},
                                   {"x": {"class": "NoSuch"}},
                                   {"p": {"class": "PooledMLE", "lamda": 1.0}}]}
    _, problems = check_spec(spec)
    assert [p.index for p in problems] == [1, 2]
    assert "unknown estimator 'NoSuch'" in problems[0].message
    assert problems[1].key == "estimators.p.lamda"


def test_dry_run_lists_at_most_ten_bad_cells_then_a_count(tmp_path, capsys):
    spec = write(tmp_path / "s.toml", "[sweep]\ntask = 'tests.sweep.toy_task:toy'\nseed = 1\n[axes]\n"
                 "x = [" + ", ".join(f"'v{i}'" for i in range(14)) + ", 1.0]\n")
    rc = cli_main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--dry-run"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert "14 of 15 grid points cannot run" in lines[0]
    assert len(lines) == 1 + 10 + 1 and lines[-1].strip() == "... and 4 more"
    assert all("x: must be a number" in line for line in lines[1:11])


# ----------------------------------------------------------------------- failed cells
def test_all_cells_failing_prints_the_first_error_with_no_progress(tmp_path, capsys):
    spec = write(tmp_path / "fail.toml", TOY.replace("n = 3", "n = 3\nfail = true"))
    rc = cli_main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--executor", "serial",
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "all 2 computed cell(s) failed; first: cell 0 replicate 0: RuntimeError: toy " \
           "failure requested (x=1.0)" in lines[0]
    # some failing: said too; none failing: silent
    spec.write_text(TOY.replace("[axes]", "[axes]\nfail = [false, true]"))
    rc = cli_main(["sweep", str(spec), "--out", str(tmp_path / "o2"), "--executor", "serial",
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "2 of 4 computed cell(s) failed" in err and len(err.splitlines()) == 1
    spec.write_text(TOY)
    rc = cli_main(["sweep", str(spec), "--out", str(tmp_path / "o3"), "--executor", "serial",
                   "--no-progress"])
    assert rc == 0 and capsys.readouterr().err == ""

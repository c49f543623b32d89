"""The one direction of the imports (README, "Map of the package"): a module may import only
layers of a lower rank (or its own layer); ``theory`` imports nothing from ``simulator`` or
``figures``. Read from the source with ``ast`` (nothing is imported), so a new upward import
fails here whichever code path would run it."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# layer -> rank; a layer is ``simulator.<name>`` (a module or a subpackage), or a top-level
# package. Entry points (the command line) sit on top; theory stands alone.
RANK = {
    "seeding": 0, "validation": 0,
    "data": 1, "arms": 1,
    "population": 2, "metrics": 2, "designs": 2,
    "simulator": 2.5,  # the package root re-exports data and population
    "kernels": 3,
    "estimators": 4, "policy": 4,
    "fairness": 5, "reward_free": 5,
    "experiment": 5.5,  # the pipeline: design -> data -> estimators -> policies -> evaluation
    "arena": 5.7,  # the arena's protocols (ours beside the field's peers), on the pipeline
    "sweep": 6, "llm": 6, "warmup": 6,
    "figures": 7, "bench": 7,
    "cli": 8, "reproduce": 8, "__main__": 9,
}


def _layer(module: str):
    parts = module.split(".")
    if parts[0] in ("theory", "figures"):
        return parts[0]
    if parts[0] != "simulator":
        return None  # third-party or standard library
    return parts[1] if len(parts) > 1 else "simulator"


def _imports(path: pathlib.Path):
    """(module name, [imported module names]) of one source file, relative imports resolved."""
    rel = path.relative_to(ROOT).with_suffix("")
    mod = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    pkg = mod if rel.name == "__init__" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                out.append(".".join(base + ([node.module] if node.module else [])))
            else:
                out.append(node.module or "")
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return mod, out


def _sources():
    for top in ("simulator", "theory", "figures"):
        yield from sorted((ROOT / top).rglob("*.py"))


def test_every_layer_has_a_rank():
    layers = {_layer(_imports(p)[0]) for p in _sources()}
    missing = sorted(x for x in layers - {"theory"} if x not in RANK)
    assert not missing, f"new layer(s) {missing}: give them a rank in RANK (and the README map)"


def _violations(mod, targets):
    """Messages for every import of ``mod`` that does not point down."""
    here = _layer(mod)
    bad = []
    for t in targets:
        there = _layer(t)
        if there is None or there == here:
            continue
        if here == "theory":
            bad.append(f"{mod} imports {t}: theory imports nothing from simulator or figures")
        elif there == "theory":
            if here not in ("figures", "bench", "cli", "reproduce"):
                bad.append(f"{mod} imports {t}: only figures lay theory over results")
        elif not RANK[there] < RANK[here]:
            bad.append(f"{mod} (layer {here}, rank {RANK[here]}) imports {t} (layer {there}, "
                       f"rank {RANK[there]}): imports must point down")
    return bad


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    bad = _violations(*_imports(path))
    assert not bad, "\n".join(bad)


def test_the_checker_rejects_upward_imports():
    # the rule can fail: a kernel importing an estimator, theory importing the simulator, data
    # importing the sweep engine are each reported
    assert _violations("simulator.kernels.probe", ["simulator.estimators"])
    assert _violations("theory.probe", ["simulator.data"])
    assert _violations("simulator.data", ["simulator.sweep.runner"])
    assert not _violations("simulator.estimators.probe", ["simulator.kernels.bt_numba", "numpy"])

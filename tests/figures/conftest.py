import pytest


@pytest.fixture
def tiny_sweep(tmp_path):
    """Run a figure module's tiny grid through the real sweep engine (serially); a DataFrame."""
    from figures.runner import sweep_spec
    from simulator.sweep import run_sweep

    def run(mod):
        return run_sweep(sweep_spec(mod.spec("tiny")), tmp_path / "sweep", executor="serial",
                         progress=False)

    return run

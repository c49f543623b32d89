"""The README's Python examples run and say what they claim."""

import re
from pathlib import Path


def test_readme_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Ten lines of Python\n\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    sep, shr = map(float, re.search(r"separate ([\d.]+), SharedRep ([\d.]+)", out).groups())
    assert shr < sep  # the example's point: the minority gains from the shared traits


def test_readme_fixed_design_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## A fixed design, greedy against pessimism\n.*?```python\n(.*?)```", text,
                     re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    greedy = [float(v) for v in re.search(r"greedy plays \[([^\]]*)\]", out).group(1).split()]
    pess = [float(v) for v in re.search(r"pessimism plays \[([^\]]*)\]", out).group(1).split()]
    # the example's point: greedy follows the one lucky comparison to arm 2, pessimism does not
    assert greedy[2] > 0.9 and pess[1] > 0.5 > pess[2]

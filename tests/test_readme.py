"""The README's Python example runs and says what it claims."""

import re
from pathlib import Path


def test_readme_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Ten lines of Python\n\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    sep, shr = map(float, re.search(r"separate ([\d.]+), SharedRep ([\d.]+)", out).groups())
    assert shr < sep  # the example's point: the minority gains from the shared traits

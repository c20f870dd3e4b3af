"""The README's opening example runs and prints what its comments say."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_prints_what_it_claims():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    # The comment lines right after a print() are its expected output.
    expected, after_print = [], False
    for line in block.splitlines():
        if line.startswith("# ") and after_print:
            expected.append(line[2:])
        else:
            after_print = line.startswith("print(")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(README), "exec"), {})
    assert out.getvalue().splitlines() == expected

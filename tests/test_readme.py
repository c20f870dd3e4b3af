"""The README's opening example and its headline results say what is true.

The opening example runs and prints what its comments say; every number of
the headline results table is in the benchmark results file its row links
to, so that a rerun benchmark cannot leave the README quoting old numbers.
"""

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# A number as the tables write it: 148, 0.9351, +0.206, 5,363, 8.7x (a ratio);
# in 28x28 or H200 the digits count, the letters around them do not.
NUMBER = re.compile(r"(?<![\d.,])[+-]?\d+(?:,\d{3})*(?:\.\d+)?(?:x(?!\d))?(?![\d])")
RESULTS_LINK = re.compile(r"\]\((benchmarks/results/[\w.-]+\.md)\)")


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


def headline_rows(text: str) -> list[str]:
    """The body rows of the table under the README's ``## Headline results``."""
    section = re.search(r"^## Headline results\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, "README.md has no '## Headline results' section"
    table = [line for line in section.group(1).splitlines() if line.startswith("|")]
    assert len(table) > 2, "the headline results section has no table"
    return table[2:]  # after the header and the | --- | rule


def numbers_not_in_results(row: str) -> list[str]:
    """The numbers of a headline ``row`` that its linked results file lacks."""
    links = RESULTS_LINK.findall(row)
    assert len(links) == 1, f"a headline row must link one results file: {row}"
    results = ROOT / links[0]
    assert results.is_file(), f"{links[0]} does not exist: {row}"
    text = results.read_text()
    numbers = NUMBER.findall(RESULTS_LINK.sub("]", row))
    assert numbers, f"a headline row without a number: {row}"
    return [
        number
        for number in numbers
        if not re.search(rf"(?<![\d.,]){re.escape(number)}(?!\d|\.\d)", text)
    ]


def test_readme_headline_numbers_come_from_the_results_files():
    rows = headline_rows(README.read_text())
    assert len(rows) >= 4
    for row in rows:
        missing = numbers_not_in_results(row)
        assert not missing, f"{missing} not in the file this row links to: {row}"


def test_a_stale_headline_number_is_caught():
    row = "| defaults | 0.9352 in 148 s | PASS | [f](benchmarks/results/fashion.md) |"
    assert numbers_not_in_results(row) == ["0.9352"]
    # fashion.md holds 0.93 only inside longer numbers (0.935, 0.9351, ...).
    assert numbers_not_in_results(row.replace("0.9352", "0.93")) == ["0.93"]

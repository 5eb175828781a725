"""The README's Python examples run as they are (each in a subprocess, bounded)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 2
    assert any("LwM2MServer" in block and "LwM2MClient" in block for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    block = BLOCKS[index]
    result = subprocess.run(
        [sys.executable, "-c", block],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # the printed values are the ones the comments promise
    for value in re.findall(r"print\(.*\)  # (.+)$", block, re.M):
        assert value in result.stdout, (value, result.stdout)

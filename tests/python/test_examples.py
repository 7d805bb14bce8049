"""The examples in examples/python run against the test server and exit 0."""

import subprocess
import sys

import pytest

from sluice_testlib import PASSWORD, REPO, USER


@pytest.mark.parametrize("script, expected", [
    ("adbc_example.py", ["MOZAMBIQUE", "loaded 3 rows", "b-2"]),
    ("flight_example.py", ["MIDDLE EAST", "lineitem_rows"]),
])
def test_example_runs(uri, script, expected):
    result = subprocess.run([sys.executable, str(REPO / "examples" / "python" / script),
                             "--uri", uri, "--user", USER, "--password", PASSWORD],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    for text in expected:
        assert text in result.stdout, result.stdout

"""The Hypothesis profile that `make test-long` asks for is the one the property tests run at,
whichever test modules are collected (a module importing tests.conftest imports it again)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys, pytest
from hypothesis import settings
class Probe:
    def pytest_collection_finish(self, session):
        print("PROFILE", settings.get_current_profile_name(), settings.default.max_examples)
sys.exit(pytest.main(["-q", "-n0", "--co", "-p", "no:cacheprovider", *sys.argv[1:]],
                     plugins=[Probe()]))
"""


@pytest.mark.parametrize(
    ("args", "expected"), [([], "ci 8"), (["--hypothesis-profile=long"], "long 200")]
)
def test_the_profile_asked_for_holds_after_collection(args, expected):
    # test_badinput_fuzz imports tests.conftest, which once loaded `ci` again
    modules = ["tests/test_badinput_fuzz.py", "tests/test_point_in_time.py"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"PROFILE {expected}" in done.stdout

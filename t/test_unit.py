"""One pytest case per C unit test of common/ (build/unit_tests, see t/unit/unit.h)."""

import os
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BINARY = os.path.join(REPO, "build", "unit_tests")


def _names():
    """The registered tests; a missing or broken binary becomes one failing
    case instead of silently collecting nothing."""
    if not os.access(BINARY, os.X_OK):
        return ["<build/unit_tests missing: run ./build.sh build>"]
    try:
        r = subprocess.run([BINARY, "--list"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
    except subprocess.TimeoutExpired:
        return ["<build/unit_tests --list timed out>"]
    names = r.stdout.decode(errors="replace").split()
    if r.returncode != 0 or not names:
        return ["<build/unit_tests --list failed (%d)>" % r.returncode]
    return names


@pytest.mark.parametrize("name", _names())
def test_c_unit(name):
    assert not name.startswith("<"), name
    r = subprocess.run([BINARY, name], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120, cwd=REPO)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, "%s exited %d:\n%s" % (name, r.returncode, out)

"""The layout rule of common/ (docs/design.md "Layout"): t/check_layout.sh,
which every build runs (Makefile: build/layout.ok), holds on this tree and
names each kind of violation it exists for."""

import os
import shutil
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CHECK = os.path.join(REPO, "t", "check_layout.sh")


def _check(common):
    r = subprocess.run([CHECK, common], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stderr


def test_tree_holds_the_rule():
    rc, err = _check(os.path.join(REPO, "common"))
    assert (rc, err) == (0, "")


def test_core_and_io_are_not_empty():
    for d in ("core", "io"):
        srcs = [f for f in os.listdir(os.path.join(REPO, "common", d))
                if f.endswith(".c")]
        assert srcs, "common/%s has no source" % d


@pytest.mark.parametrize("where,name,text,expect", [
    # a core file including an io header, also through a path
    ("core", "acme_bad.c", '#include "acme_store.h"\n', '"acme_store.h"'),
    ("core", "acme_bad.h", '# include "../io/acme_transport.h"\n',
     "../io/acme_transport.h"),
    # blocking system interfaces in core
    ("core", "acme_bad.c", "#include <sys/socket.h>\n", "<sys/socket.h>"),
    ("core", "acme_bad.c", "#include <unistd.h>\n", "<unistd.h>"),
    # a source of common/ outside core/ and io/
    (".", "acme_flat.c", "int x;\n", "acme_flat.c: common/ sources go"),
], ids=["io-header", "io-header-by-path", "socket", "unistd", "flat-file"])
def test_violations_are_named(tmp_path, where, name, text, expect):
    common = str(tmp_path / "common")
    shutil.copytree(os.path.join(REPO, "common"), common)
    with open(os.path.join(common, where, name), "w") as f:
        f.write(text)
    rc, err = _check(common)
    assert rc == 1
    assert expect in err, err
    # the rest of the tree is fine: only the planted file is named
    assert all(name in line for line in err.splitlines()), err


def test_io_may_include_core_and_system_headers(tmp_path):
    common = str(tmp_path / "common")
    shutil.copytree(os.path.join(REPO, "common"), common)
    with open(os.path.join(common, "io", "acme_ok.c"), "w") as f:
        f.write('#include <poll.h>\n#include "acme_util.h"\n'
                '#include "acme_store.h"\n')
    assert _check(common) == (0, "")

#!/usr/bin/python3
"""Runs the test suite as parallel shards, each in its own network namespace.

    t/run_shards.py [--jobs N]

Every integration test binds fixed loopback ports (pebble 14000, http-01
5002, ...).  Under "unshare -n" each shard gets a loopback of its own, so the
shards cannot collide and run side by side; the tests spend most of their
time waiting for servers and the CA, so two shards on two cores roughly halve
the wall time.  Without the privilege for unshare (not root), the shards get
distinct ACME_TEST_PORT_OFFSET values instead.

Each shard is one pytest process; its output goes to build/test-results/
<shard>.log and is printed whole when the shard ends.  The last line is the
sum over the shards, "total: N passed, N failed, N skipped", and the exit
status is 0 only when every shard's pytest exited 0.
"""

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PY = "/usr/bin/python3"
RESULTS = os.path.join(REPO, "build", "test-results")
SHARD_TIMEOUT = 40 * 60     # far beyond a healthy run; a hang must not outlive CI

# Files by shard, balanced on measured durations (pytest --durations); any
# test file not named here joins the first shard, so nothing is left out.
SHARDS = [
    ("nginx-a", ["integration/test_nginx_resilience", "integration/test_nginx_multi",
                 "integration/test_nginx_renew"]),
    ("nginx-b", ["integration/test_nginx_"]),
    ("apache-a", ["integration/test_apache_resilience", "integration/test_apache_renew",
                  "integration/test_apache_sni", "integration/test_apache_certcheck"]),
    ("apache-b", ["integration/test_apache_", "test_unit.py", "test_fuzz.py",
                  "integration/test_dns_bind9.py"]),
]


def test_files():
    out = []
    for base, _dirs, files in os.walk(os.path.join(REPO, "t")):
        for f in files:
            if f.startswith("test_") and f.endswith(".py"):
                out.append(os.path.relpath(os.path.join(base, f), os.path.join(REPO, "t")))
    return sorted(out)


def assign(files):
    shards = {name: [] for name, _ in SHARDS}
    for f in files:
        for name, prefixes in SHARDS:
            if any(f.startswith(p) for p in prefixes):
                shards[name].append(f)
                break
        else:
            shards[SHARDS[0][0]].append(f)
    return [(name, shards[name]) for name, _ in SHARDS if shards[name]]


def can_unshare():
    try:
        r = subprocess.run(["unshare", "-n", "true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def junit_counts(path):
    """(passed, failed, skipped) from a pytest junit xml, or None."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = failed = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failed += int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return tests - failed - skipped, failed, skipped


def main(argv):
    os.makedirs(RESULTS, exist_ok=True)
    netns = can_unshare()
    procs = []
    for i, (name, files) in enumerate(assign(test_files())):
        log = os.path.join(RESULTS, name + ".log")
        xml = os.path.join(RESULTS, name + ".xml")
        for p in (log, xml):
            if os.path.exists(p):
                os.unlink(p)
        pytest = [PY, "-m", "pytest", "-v", "-p", "no:cacheprovider",
                  "--durations=15", "--junitxml=" + xml] + [os.path.join(REPO, "t", f) for f in files]
        env = dict(os.environ)
        if netns:
            cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + pytest
        else:
            env["ACME_TEST_PORT_OFFSET"] = str(i * 100)
            cmd = pytest
        fh = open(log, "wb")
        print("==> shard %s: %d files%s" % (name, len(files), " (own network namespace)" if netns else ""),
              flush=True)
        procs.append((name, log, xml, subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                                       cwd=REPO, env=env), fh, time.monotonic()))

    total = [0, 0, 0]
    ok = True
    deadline = time.monotonic() + SHARD_TIMEOUT
    ended = {}
    while len(ended) < len(procs):
        for name, _log, _xml, p, _fh, t0 in procs:
            if name not in ended and p.poll() is not None:
                ended[name] = (p.returncode, time.monotonic() - t0)
        if len(ended) < len(procs):
            if time.monotonic() > deadline:
                for name, _log, _xml, p, _fh, _t0 in procs:
                    if name not in ended:
                        p.kill()
                        ended[name] = (p.wait(), SHARD_TIMEOUT)
                        print("==> shard %s killed after %d s" % (name, SHARD_TIMEOUT), flush=True)
                break
            time.sleep(0.5)
    for name, log, xml, p, fh, t0 in procs:
        rc, secs = ended[name]
        fh.close()
        with open(log, "rb") as f:
            sys.stdout.write(f.read().decode(errors="replace"))
        counts = junit_counts(xml)
        print("==> shard %s: exit %d after %.0f s, %s" % (
            name, rc, secs,
            "%d passed, %d failed, %d skipped" % counts if counts else "no results"), flush=True)
        if rc != 0 or counts is None:
            ok = False
        if counts is None:
            total[1] += 1       # a shard without results is a failure
        else:
            total = [a + b for a, b in zip(total, counts)]
    print("total: %d passed, %d failed, %d skipped" % tuple(total), flush=True)
    return 0 if ok and total[1] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Runs the test suite as parallel shards, each in its own network namespace.

    t/run_shards.py [--shards N]        (default 4)

Every integration test binds fixed loopback ports (pebble 14000, http-01
5002, ...).  Under "unshare -n" each shard gets a loopback of its own, so the
shards cannot collide and run side by side; the tests spend most of their
time waiting for servers and the CA, so several shards on two cores cut the
wall time.  Without the privilege for unshare (not root), the shards get
distinct ACME_TEST_PORT_OFFSET values instead.

The shards are made from the collection itself ("pytest --collect-only" over
t/), test by test (test ids, so test_issue.py::test_first_issue[nginx] and
[apache] may run side by side): longest first into the shard with the least
work, by the durations of the last run (build/test-results/*.xml) or, for a
test not seen yet, by SLOW below or a default.  New test files are picked up
without any list to edit.  The union of the shards must be the whole
collection, each test exactly once, both as assigned and as reported by the
shards' junit files; otherwise the run fails, naming the tests.

Each shard is one pytest process; its output goes to build/test-results/
<shard>.log and is printed whole when the shard ends.  The last line is the
sum over the shards, "total: N passed, N failed, N skipped", and the exit
status is 0 only when every shard's pytest exited 0 and the check held.
"""

import glob
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PY = "/usr/bin/python3"
RESULTS = os.path.join(REPO, "build", "test-results")
SHARD_TIMEOUT = 40 * 60     # far beyond a healthy run; a hang must not outlive CI
SHARDS = 4

# Seconds, for a clean clone without durations of a last run: tests whose
# name starts with one of these (the rest: DEFAULT_SECONDS; unit tests less).
SLOW = {
    "test_packages": 100,
    "test_certbot_steps_against_pebble": 60,
    "test_unit_tests_asan_ubsan": 44,
    "test_renewal_on_a_full_tmpfs_is_served_then_stored": 39,
    "test_write_errors_lose_nothing": 35,
    "test_renewal_on_a_read_only_file_system": 32,
    "test_short_lived_renewed_on_time_under_load": 40,
    "test_packages": 60,
    "test_wrong_certificate_keeps_the_previous_one": 40,
    "test_renewal_hot_swap": 37,
    "test_future_certificate_waits_for_its_not_before": 35,
    "test_renewals_in_a_row": 30,
    "test_acme_process_crashing_mid_order": 25,
    "test_issued_while_read_only": 21,
    "test_challenge_list_falls_back": 18,
    "test_ca_down_at_start": 16,
    "test_killed_acme_process_is_replaced": 16,
    "test_frozen_lease_holder": 11,
    "test_twenty_certificates_one_account": 9,
    "test_unclear_answers_keep_the_order": 8,
}
DEFAULT_SECONDS = 5.0
UNIT_SECONDS = 0.5


def collect():
    """The node ids of the whole suite, in collection order."""
    r = subprocess.run([PY, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                        os.path.join(REPO, "t")], cwd=REPO, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode(errors="replace")
    ids = [l for l in out.splitlines() if "::" in l and not l.startswith(" ")]
    if r.returncode != 0 or not ids:
        sys.stdout.write(out)
        raise SystemExit("run_shards: collecting the tests failed (exit %d)" % r.returncode)
    return ids


def junit_key(nodeid):
    """(classname, name) of a node id as pytest's junit xml writes them."""
    parts = nodeid.split("::")
    mod = parts[0][:-3] if parts[0].endswith(".py") else parts[0]
    return (".".join([mod.replace("/", ".")] + parts[1:-1]), parts[-1])


def junit_cases(path):
    """[(classname, name, seconds)] of a pytest junit xml ([] if unreadable)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    return [(c.get("classname", ""), c.get("name", ""), float(c.get("time", 0) or 0))
            for c in root.iter("testcase")]


def last_durations():
    out = {}
    for path in glob.glob(os.path.join(RESULTS, "*.xml")):
        for cls, name, secs in junit_cases(path):
            out[(cls, name)] = secs
    return out


def estimate(nodeid, known):
    key = junit_key(nodeid)
    if key in known:
        return known[key]
    name = key[1]
    for prefix, secs in SLOW.items():
        if name.startswith(prefix):
            return secs
    return DEFAULT_SECONDS if "/integration/" in nodeid else UNIT_SECONDS


def assign(ids, n, known):
    """n shards [(name, [node ids])]: longest first into the least loaded."""
    load = [0.0] * n
    shards = [[] for _ in range(n)]
    for nid in sorted(ids, key=lambda i: -estimate(i, known)):
        k = load.index(min(load))
        shards[k].append(nid)
        load[k] += estimate(nid, known)
    order = {nid: i for i, nid in enumerate(ids)}
    out = []
    for k in range(n):
        if shards[k]:
            out.append(("shard-%d" % (k + 1), sorted(shards[k], key=order.get), load[k]))
    # the check: every collected test in exactly one shard
    flat = [nid for _, s, _ in out for nid in s]
    if sorted(flat) != sorted(ids):
        missing = set(ids) - set(flat)
        twice = {nid for nid in flat if flat.count(nid) > 1}
        raise SystemExit("run_shards: the shards are not the collection: missing %s, twice %s"
                         % (sorted(missing), sorted(twice)))
    return out


def check_reported(shards):
    """Every assigned test reported exactly once by its shard's junit xml and
    nothing else: a list of problems (empty when fine)."""
    problems = []
    for name, ids, _ in shards:
        want = sorted(junit_key(i) for i in ids)
        got = sorted((c, n) for c, n, _ in junit_cases(os.path.join(RESULTS, name + ".xml")))
        if got != want:
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            twice = sorted({k for k in got if got.count(k) > 1})
            problems.append("shard %s: %d assigned, %d reported; not run: %s; not assigned: %s;"
                            " twice: %s" % (name, len(want), len(got), missing[:20],
                                            extra[:20], twice[:20]))
    return problems


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
    n = SHARDS
    if len(argv) == 2 and argv[0] in ("--shards", "--jobs") and argv[1].isdigit():
        n = max(1, int(argv[1]))
    elif argv:
        print("usage: %s [--shards N]" % sys.argv[0], file=sys.stderr)
        return 2
    os.makedirs(RESULTS, exist_ok=True)
    ids = collect()
    shards = assign(ids, n, last_durations())
    for p in glob.glob(os.path.join(RESULTS, "*.xml")) + glob.glob(os.path.join(RESULTS, "*.log")):
        os.unlink(p)
    netns = can_unshare()
    procs = []
    for i, (name, files, secs) in enumerate(shards):
        log = os.path.join(RESULTS, name + ".log")
        xml = os.path.join(RESULTS, name + ".xml")
        pytest = [PY, "-m", "pytest", "-v", "-p", "no:cacheprovider",
                  "--durations=15", "--junitxml=" + xml] + files
        env = dict(os.environ)
        if netns:
            cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + pytest
        else:
            env["ACME_TEST_PORT_OFFSET"] = str(i * 100)
            cmd = pytest
        fh = open(log, "wb")
        print("==> shard %s: %d tests, ~%.0f s%s" % (name, len(files), secs,
                                                    " (own network namespace)" if netns else ""),
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
    problems = check_reported(shards)
    for p in problems:
        print("==> NOT THE WHOLE SUITE: " + p, flush=True)
    if not problems:
        print("==> every one of the %d collected tests ran in exactly one shard" % len(ids),
              flush=True)
    print("total: %d passed, %d failed, %d skipped" % tuple(total), flush=True)
    return 0 if ok and total[1] == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

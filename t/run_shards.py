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
test not seen yet, by the tables SLOW and FILE_SECONDS below or a default.
New test files are picked up without any list to edit.  The union of the
shards must be the whole collection, each test exactly once, both as
assigned and as reported by the shards' junit files; otherwise the run
fails, naming the tests.

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

# Seconds, for a clean clone without durations of a last run (the junit
# durations of a clean run of the whole suite in 4 shards on 2 cores, with
# what later changes cut; refresh them when a test's length changes much).
# SLOW: a test by its name, with its parameters ("test_x[apache]") or
# without (every parametrisation of it).  FILE_SECONDS: the mean of the
# other tests of a file.  Anything else (a new file): DEFAULT_SECONDS, unit
# tests UNIT_SECONDS.  Good estimates make the shards end together; the
# greedy assignment below places the long tests first.  A new test longer
# than ~10 s belongs in SLOW: at DEFAULT_SECONDS it lands in any shard,
# which then ends that much later than the others.
SLOW = {
    "test_packages": 34,
    "test_write_errors_lose_nothing": 34,
    "test_renewal_on_a_full_tmpfs_is_served_then_stored": 33,
    "test_short_lived_renewed_on_time_under_load": 32,
    "test_unit_tests_asan_ubsan": 32,
    "test_renewal_on_a_read_only_file_system": 31,
    "test_future_certificate_waits_for_its_not_before": 27,
    "test_fleet_short_lived_renewals": 26,
    "test_fleet_failed_order_backs_off_as_one": 12,
    "test_fleet_etcd_outage_then_renewal": 24,
    "test_acme_process_crashing_mid_order_backs_off[apache]": 21,
    "test_renewals_in_a_row_and_a_foreign_account_url": 21,
    "test_wrong_certificate_keeps_the_previous_one": 19,
    "test_renewal_hot_swap_without_reload": 17,
    "test_fleet_holder_killed_mid_order": 16,
    "test_killed_acme_process_is_replaced[apache]": 13,
    "test_issued_while_read_only_is_served_then_stored": 12,
    "test_events": 6,
    "test_ari_errors_fall_back_to_lifetime": 8,
    "test_frozen_lease_holder_keeps_off_new_holders_challenges": 8,
    "test_challenge_list_falls_back": 7,
    "test_rate_limited_pauses_the_issuer": 7,
    "test_ari_window_renews_with_replaces": 6,
    "test_existing_certificate_is_the_bridge": 6,
    "test_key_rollover": 6,
    "test_order_counters": 6,
    "test_state_path_off": 6,
    "test_bridge_of_another_key_type_retires": 5,
    "test_ca_down_at_start_serves_fallback_then_issues": 5,
    "test_fleet_cold_start_one_order": 6,
    "test_fleet_store_down_orders_alone_publishes_later": 5,
    "test_one_order_any_node_answers": 10,
    "test_alone_then_published": 7,
    "test_tls_alpn_mirrored": 9,
    "test_fuzz_target[fuzz_engine]": 5,
    "test_fuzz_target[fuzz_pem]": 5,
    "test_fuzz_target[fuzz_proxy]": 5,
    "test_key_type_change_serves_the_old_until_issued": 5,
    "test_killed_acme_process_is_replaced[nginx]": 5,
    "test_max_orders_one_at_a_time": 5,
    "test_reload_keeps_certificate_without_new_order": 5,
    "test_switch_ca_reorders_at_once[nginx]": 5,
    "test_twenty_certificates_one_account": 5,
    "test_dns01_failure[apache-not-visible]": 4,
    "test_dns01_failure[nginx-not-visible]": 4,
    "test_dns01_hook[apache]": 4,
    "test_dns01_reload_removes_records[apache]": 4,
    "test_failover_to_second_ca_and_back": 4,
    "test_first_name_change_serves_the_old_until_issued": 4,
    "test_keygen_lowest_priority": 4,
    "test_reload_after_store_entry_deleted": 4,
    "test_renew_now": 4,
    "test_restart_reuses_stored_certificate": 4,
    "test_unclear_answers_keep_the_order": 4,
    "test_c_unit[job_prep_account_key_concurrent_first]": 3,
    "test_c_unit[job_store_load_replaced]": 3,
    "test_certbot_steps_against_pebble[apache]": 3,
    "test_certbot_steps_against_pebble[nginx]": 3,
    "test_dns01_failure[nginx-update-badsig]": 3,
    "test_eab_missing_clear_error[nginx]": 3,
    "test_eab_wrong_key_clear_error[apache]": 3,
    "test_eab_wrong_key_clear_error[nginx]": 3,
    "test_tls_alpn_orders_for_the_same_names_take_turns[nginx]": 3,
    "test_acme_process_crashing_mid_order_backs_off[nginx]": 1,
}
FILE_SECONDS = {
    "test_bridge": 1.1,
    "test_ca_problems": 1.7,
    "test_coexist": 2.4,
    "test_compat": 1.4,
    "test_config": 0.1,
    "test_control": 1.8,
    "test_dns01": 0.8,
    "test_dns_bind9": 1.0,
    "test_eab": 0.3,
    "test_etcd_store": 1.3,
    "test_events": 2.2,
    "test_failover": 0.9,
    "test_fleet": 1.7,
    "test_fleet_apache": 1.0,
    "test_fleet_scenarios": 5.0,
    "test_fuzz": 0.0,
    "test_handshake_ctx": 1.4,
    "test_http01": 1.2,
    "test_inventory": 0.6,
    "test_issue": 1.5,
    "test_keepalive": 1.8,
    "test_key_reuse": 2.1,
    "test_key_rollover": 0.9,
    "test_layout": 2.1,
    "test_migration_docs": 0.1,
    "test_multi": 1.2,
    "test_names": 0.7,
    "test_notbefore": 0.2,
    "test_pipeline": 0.3,
    "test_preferred_chain": 1.5,
    "test_profiles": 1.8,
    "test_proxy": 1.5,
    "test_renew": 2.6,
    "test_resilience": 1.7,
    "test_retry_delay": 1.1,
    "test_sni": 3.6,
    "test_status_views": 3.7,
    "test_store_access": 0.5,
    "test_store_safety": 0.6,
    "test_switch_ca": 2.2,
    "test_tlsalpn": 0.7,
    "test_unit": 0.1,
    "test_user_agent": 1.6,
}
DEFAULT_SECONDS = 3.0
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
    for k in (name, name.split("[")[0]):
        if k in SLOW:
            return SLOW[k]
    module = key[0].rsplit(".", 1)[-1]
    if module in FILE_SECONDS:
        return FILE_SECONDS[module]
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

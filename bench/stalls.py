#!/usr/bin/python3
"""Request latency in one nginx worker, idle vs while RSA-4096 certificates
are ordered (issue 9).  See stalls.sh.

Each round starts nginx (worker_processes 1, pinned to CPU 0 by
worker_cpu_affinity, as a busy production worker would be) on a fresh
store with STALLS_CERTS managed certificates (key=rsa:4096, one name each;
all ordered at once: max_orders is 8) against pebble, and a load generator
(bench/stalls_client.c, pinned to the other CPU with pebble): sequential
keep-alive GETs of a 512-byte static file over plain HTTP, one every
STALLS_INTERVAL_US (1000) microseconds, each request's latency recorded.

  busy  from the first answered request until every certificate is
        installed in the worker ('certificate "ID" installed in worker
        process P' in the error log): the worker generates the RSA-4096
        keys, signs the CSRs, talks to pebble, stores and installs
  idle  then, after 0.3 s, as long again (at least STALLS_IDLE_MIN, 3 s),
        on the same connection: nothing left to do for the module

Per build and window (the rounds' samples pooled): p50, p99, max, and the
requests over 10 ms.  --old DIR runs the same rounds also with
DIR/ngx_http_acme_module.so (e.g. a copy of another build), alternating
with the build in build/: before/after in one run.

The last line (the build in build/):
  max added latency = X ms, p99 idle = A ms, p99 busy = B ms
X = busy max - idle max.

Environment: STALLS_ROUNDS (per build, default 3), STALLS_CERTS (default
4), STALLS_INTERVAL_US, STALLS_IDLE_MIN.
"""

import os
import re
import signal
import subprocess
import sys
import time

import benchlib
from benchlib import log

import nginx_server  # noqa: E402
from nginx_server import NginxServer  # noqa: E402
from pebble import HTTP_PORT  # noqa: E402

REPO = os.path.abspath(os.path.join(benchlib.HERE, ".."))
ROUNDS = int(os.environ.get("STALLS_ROUNDS", "3"))
CERTS = int(os.environ.get("STALLS_CERTS", "4"))
INTERVAL_US = int(os.environ.get("STALLS_INTERVAL_US", "1000"))
IDLE_MIN = float(os.environ.get("STALLS_IDLE_MIN", "3"))
# the worker (all its threads) and the client run at this nice value: on a
# machine shared with other jobs it shields the measured path from them (a
# dedicated server's worker has its CPU to itself); 0 = as started
NICE = int(os.environ.get("STALLS_NICE", "-5"))
TIMEOUT = 180.0
KEY = "rsa:4096"
INSTALLED = re.compile(r'acme: certificate "([^"]+)" installed in worker process (\d+)')
OTHER_CPUS = set(range(1, benchlib.NCPU)) if benchlib.NCPU >= 2 else None


def build_client(work):
    exe = os.path.join(work, "stalls_client")
    subprocess.run(["cc", "-O2", "-std=c11", os.path.join(benchlib.HERE, "stalls_client.c"),
                    "-o", exe], check=True)
    return exe


def names(label, r):
    return ["st%d-%s-r%d.example.test" % (i, label, r) for i in range(CERTS)]


def nginx_conf(pebble, state, www, label, r):
    text = nginx_server.issuer_conf(pebble, state)
    for name in names(label, r):
        text += """
    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off;
             acme_certificate pebble key=%s; }
""" % (nginx_server.HTTPS_PORT, name, KEY)
    return text + """
    server { listen 127.0.0.1:%d default_server; server_name %s; access_log off;
             location = /f.txt { root %s; } }
""" % (HTTP_PORT, " ".join(names(label, r)), www)


def renice_threads(pid, nice):
    """Every thread of pid (the worker's event loop and its thread pool:
    on Linux a nice value is per thread) to nice."""
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except OSError:
            pass


def pin_others(pids):
    if OTHER_CPUS:
        for pid in pids:
            try:
                os.sched_setaffinity(pid, OTHER_CPUS)
            except OSError:
                pass


def one_round(label, module, pebble, work, www, exe, r):
    """([(start, latency)] busy, [...] idle, busy seconds), seconds."""
    d = os.path.join(work, "ngx-%s-%d" % (label, r))
    state = os.path.join(d, "state")
    srv = NginxServer(d, workers=1, module=module)
    srv.write_conf(nginx_conf(pebble, state, www, label, r),
                   main_extra="worker_cpu_affinity 1;" if OTHER_CPUS else "")
    os.makedirs(os.path.dirname(srv.error_log_path), exist_ok=True)
    client = None
    try:
        srv.start(ports=(HTTP_PORT,))
        if NICE:
            for pid in srv.worker_pids():
                renice_threads(pid, NICE)
        t_client = time.monotonic()
        client = subprocess.Popen(
            (["taskset", "-c", ",".join(map(str, sorted(OTHER_CPUS)))] if OTHER_CPUS else [])
            + (["nice", "-n", str(NICE)] if NICE else [])
            + [exe, str(HTTP_PORT), "/f.txt", str(INTERVAL_US)],
            stdout=subprocess.PIPE)
        deadline = time.monotonic() + TIMEOUT
        installed = set()
        while len(installed) < CERTS:
            for m in INSTALLED.finditer(srv.error_log()):
                installed.add(m.group(1))
            if time.monotonic() > deadline or not srv.running():
                raise RuntimeError("round %d %s: %d of %d certificates installed after "
                                   "%.0f s; log:\n%s" % (r, label, len(installed), CERTS,
                                                         TIMEOUT, srv.error_log()[-3000:]))
            time.sleep(0.005)
        t_done = time.monotonic()
        time.sleep(0.3)
        t_idle = time.monotonic()
        idle_len = max(IDLE_MIN, t_done - t_client)
        time.sleep(idle_len)
        client.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=60)
        samples = [tuple(int(x) / 1e6 for x in line.split())
                   for line in out.decode().splitlines() if line.strip()]
        client = None
        if not samples:
            raise RuntimeError("round %d %s: no request answered" % (r, label))
        t_first = samples[0][0]
        busy_len = t_done - t_first
        if os.environ.get("STALLS_DUMP"):
            with open(os.path.join(os.environ["STALLS_DUMP"], "%s-%d.txt" % (label, r)), "w") as f:
                f.write("# t_done %.6f t_idle %.6f\n" % (t_done, t_idle))
                f.writelines("%.6f %.6f\n" % s for s in samples)
        busy = [s for s in samples if s[0] <= t_done]
        idle = [s for s in samples if t_idle <= s[0] <= t_idle + idle_len]
        return busy, idle, busy_len
    finally:
        if client is not None:
            client.kill()
            client.wait()
        srv.stop()


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


def main(argv):
    builds = [("new", nginx_server.MODULE)]
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--old" and args:
            d = args.pop(0)
            builds.append(("old" if len(builds) == 1 else os.path.basename(d.rstrip("/")),
                           os.path.join(d, "ngx_http_acme_module.so")))
        else:
            raise SystemExit("usage: stalls.py [--old DIR]...")
    res = {label: {"busy": [], "idle": [], "len": []} for label, _ in builds}
    with benchlib.session("ngx-acme-stalls-", True) as (work, pebble):
        pin_others([p.pid for p in (pebble._pebble, pebble._chall) if p is not None])
        exe = build_client(work)
        www = os.path.join(work, "www")
        os.makedirs(www)
        with open(os.path.join(www, "f.txt"), "w") as f:
            f.write("x" * 511 + "\n")
        os.chmod(work, 0o755)
        for r in range(ROUNDS):
            k = r % len(builds)
            for label, module in builds[k:] + builds[:k]:
                busy, idle, busy_len = one_round(label, module, pebble, work, www, exe, r)
                e = res[label]
                e["busy"].extend(lat for _, lat in busy)
                e["idle"].extend(lat for _, lat in idle)
                e["len"].append(busy_len)
                log("  round %d %-3s busy %.2f s: %5d requests, p99 %6.2f ms, max %6.2f ms;"
                    " idle: %5d requests, p99 %6.2f ms, max %6.2f ms"
                    % (r + 1, label, busy_len, len(busy), pct([x for _, x in busy], 99) * 1e3,
                       max(x for _, x in busy) * 1e3, len(idle),
                       pct([x for _, x in idle], 99) * 1e3, max(x for _, x in idle) * 1e3))
    print()
    print("%-5s %-5s %8s %8s %8s %8s %8s" % ("build", "window", "requests", "p50 ms",
                                           "p99 ms", "max ms", ">10 ms"))
    for label, _ in builds:
        for w in ("idle", "busy"):
            xs = res[label][w]
            print("%-5s %-5s %8d %8.2f %8.2f %8.2f %8d"
                  % (label, w, len(xs), pct(xs, 50) * 1e3, pct(xs, 99) * 1e3,
                     max(xs) * 1e3, sum(1 for x in xs if x > 0.010)))
    print()
    lines = []
    for label, _ in builds:
        e = res[label]
        lines.append((label, "max added latency = %.1f ms, p99 idle = %.2f ms, p99 busy = %.2f ms"
                      % ((max(e["busy"]) - max(e["idle"])) * 1e3, pct(e["idle"], 99) * 1e3,
                         pct(e["busy"], 99) * 1e3)))
    for label, line in lines[::-1]:
        print(line if label == "new" else "%s: %s" % (label, line))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Cold start: nginx and Apache with our modules, a fresh store (no account,
no certificate) and 2 names (a.example.test, b.example.test, the test
harness's managed server / vhost, t/integration/servers.py), against Debian's
pebble on loopback (PEBBLE_VA_NOSLEEP).  Each run measures "server start ->
certificate served": from just before the server is started until a full TLS
handshake for a.example.test presents a chain that verifies against pebble's
root (polled every 10 ms).  Median of BENCH_RUNS (default 5) runs per server,
the runs of both servers alternating; one pebble for all runs (each run has a
new account key, so nothing is reused at the CA).

The last line is "cold start nginx = X s, apache = Y s".
Environment: BENCH_RUNS; ACME_NGINX_MODULE / ACME_APACHE_MODULE (the
harness's) to measure other builds.
"""

import os
import statistics
import sys
import time

import benchlib
from benchlib import log

import servers  # noqa: E402
from apache_server import ApacheServer  # noqa: E402
from nginx_server import NginxServer  # noqa: E402
from tlsutil import served_cert  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
TIMEOUT = 60.0


def make_server(kind, d):
    if kind == "nginx":
        return servers.make("nginx", nginx_factory=lambda name="nginx", **kw:
                            NginxServer(os.path.join(d, name), **kw))
    return servers.make("apache", apache_factory=lambda name="apache", **kw:
                        ApacheServer(os.path.join(d, name), **kw))


def one_run(kind, work, pebble, root, i):
    d = os.path.join(work, "%s-%d" % (kind, i))
    os.makedirs(d)
    state = os.path.join(d, "state", "pebble")
    srv = make_server(kind, d)
    srv.write_managed(pebble, state)
    try:
        t0 = time.monotonic()
        srv.start()
        deadline = t0 + TIMEOUT
        last = None
        while True:
            try:
                served_cert(servers.HTTPS_PORT, "a.example.test", cafile=root, timeout=2)
                break
            except Exception as e:       # the placeholder / fallback: not yet
                last = e
            if time.monotonic() > deadline or not srv.running():
                raise RuntimeError("%s run %d: no certificate after %.0f s (last: %r)"
                                   % (kind, i, time.monotonic() - t0, last))
            time.sleep(0.01)
        return time.monotonic() - t0
    finally:
        srv.stop()


def main():
    times = {"nginx": [], "apache": []}
    with benchlib.session("coldstart-", True) as (work, pebble):
        root = pebble.write_root(os.path.join(work, "root.pem"))
        for i in range(RUNS):
            for kind in ("nginx", "apache"):
                t = one_run(kind, work, pebble, root, i)
                times[kind].append(t)
                log("  run %d %-6s %.3f s" % (i + 1, kind, t))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        log("%s: %s" % (k, " ".join("%.3f" % t for t in v)))
    print("cold start nginx = %.2f s, apache = %.2f s" % (med["nginx"], med["apache"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Short-lived certificates renewed again and again under a handshake load
(issue 13: "a 6-day certificate keeps being renewed on time under load"),
scaled down.  See shortlived.sh.

Per server (nginx, then Apache), on a fresh store, against pebble issuing
certificates valid SHORT_VALIDITY seconds: SHORT_CERTS managed
certificates (one name each), renewed by the module's default rule for
short-lived certificates (at half the lifetime, minus a jitter of at most
1/20 of it), while SHORT_CLIENTS threads make full handshakes (chain and
name verified) round-robin over every name, until each name was seen
switching certificates SHORT_RENEWALS times.  Figures
(t/integration/shortlived.py):
  handshakes       made, and failed
  expired served   handshakes that got an expired leaf (must be 0)
  switch at        when each name's next certificate was first served, as a
                   fraction of its predecessor's lifetime (0.50 = the
                   half-life): median and worst; "on time" is < 0.75
  failed orders    consecutive_failures in the status at the end

Environment: SHORT_CERTS (default 20), SHORT_VALIDITY (seconds, default
90), SHORT_RENEWALS (default 3), SHORT_CLIENTS (default 4), SHORT_WORKERS
(nginx workers / Apache children, default 2).
"""

import os
import shutil
import sys

import benchlib  # noqa: F401 - puts t/integration on the path
from benchlib import log

import servers  # noqa: E402
import shortlived  # noqa: E402
from apache_server import ApacheServer  # noqa: E402
from nginx_server import NginxServer, make_world_traversable_tmpdir  # noqa: E402
from pebble import Pebble  # noqa: E402

CERTS = int(os.environ.get("SHORT_CERTS", "20"))
VALIDITY = int(os.environ.get("SHORT_VALIDITY", "90"))
RENEWALS = int(os.environ.get("SHORT_RENEWALS", "3"))
CLIENTS = int(os.environ.get("SHORT_CLIENTS", "4"))
WORKERS = int(os.environ.get("SHORT_WORKERS", "2"))


def one(kind, work):
    d = os.path.join(work, kind)
    os.makedirs(d)
    p = Pebble(os.path.join(d, "pebble"), validity=VALIDITY)
    p.start()
    made = []
    try:
        root = p.write_root(os.path.join(d, "root.pem"))
        if kind == "nginx":
            def factory(**kw):
                s = NginxServer(os.path.join(d, "nginx"), workers=WORKERS, **kw)
                made.append(s)
                return s
            server = servers.make("nginx", nginx_factory=factory)
        else:
            def factory(**kw):
                kw.setdefault("children", WORKERS)
                s = ApacheServer(os.path.join(d, "apache"), **kw)
                made.append(s)
                return s
            server = servers.make("apache", apache_factory=factory)
        names = ["s%d.example.test" % i for i in range(CERTS)]
        r = shortlived.run(server, p, root, os.path.join(d, "state"), names,
                           renewals=RENEWALS, clients=CLIENTS,
                           timeout=(RENEWALS + 2) * VALIDITY, issue_timeout=300)
        r["problems"] = server.problems()
        return r
    finally:
        for s in made:
            s.stop()
        p.stop()


def main(argv):
    kinds = argv or ["nginx", "apache"]
    work = make_world_traversable_tmpdir()
    rows = []
    try:
        for kind in kinds:
            log("%s: %d certificates valid %d s, %d renewals each, %d clients"
                % (kind, CERTS, VALIDITY, RENEWALS, CLIENTS))
            r = one(kind, work)
            fr = sorted(f for _, f in r["late"])
            failed = sum(c["consecutive_failures"] for c in r["status"]["certificates"])
            rows.append((kind, r, fr, failed))
            log("  %d handshakes (%d failed) in %.0f s; %d switches, worst at %.2f"
                % (r["handshakes"], len(r["failures"]), r["elapsed"], len(fr),
                   fr[-1] if fr else 0))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("%-7s %6s %9s %7s %8s %9s %12s %12s %8s" % (
        "server", "certs", "handshakes", "failed", "expired", "switches",
        "switch med", "switch worst", "orders failed"))
    ok = True
    for kind, r, fr, failed in rows:
        print("%-7s %6d %9d %7d %8d %9d %12.2f %12.2f %8d" % (
            kind, CERTS, r["handshakes"], len(r["failures"]), len(r["expired"]),
            len(fr), fr[len(fr) // 2] if fr else 0, fr[-1] if fr else 0, failed))
        ok &= not r["failures"] and not r["expired"] and not r["not_on_time"] \
            and not failed and not r["problems"]
    print()
    print("short-lived renewals on time under load: %s" % ("yes" if ok else "NO"))
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

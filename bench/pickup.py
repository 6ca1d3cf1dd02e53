#!/usr/bin/python3
"""Issuance to served in every worker (nginx) / child (Apache): how long
after the "issued" log line every serving process has installed the new
certificate.  See pickup.sh.

Each round starts a server on a fresh store with PICKUP_CERTS managed
certificates (one name each) against pebble and follows its error log
(read every millisecond, each line stamped when it appears):
  nginx   'certificate "ID" issued'           -> 'certificate "ID" activated
          in all worker processes' (every new handshake gets it from then
          on) and 'certificate "ID" installed in worker process P' for each
          worker P
  Apache  'ID: new certificate'               -> 'ID: generation G installed
          in pid P' for each child P
"served in every worker" is the last of those per certificate, minus its
issued line.  "start -> issued" (server started to the first issued line)
is shown too: on Apache it includes the wait for the first ACME request.

--old DIR: the same rounds also with DIR/ngx_http_acme_module.so and
DIR/mod_acme_auto.so (e.g. copies of another build), alternating with the
build in build/.  --only nginx|apache: one server.

Environment: PICKUP_ROUNDS (server starts per server and build, default 2),
PICKUP_CERTS (certificates per start, default 3), PICKUP_WORKERS (nginx
workers and Apache children, default 4).
"""

import os
import re
import sys
import time

import benchlib
from benchlib import log

import apache_server  # noqa: E402
import nginx_server  # noqa: E402
from apache_server import ApacheServer  # noqa: E402
from nginx_server import NginxServer  # noqa: E402
from nginx_server import HTTPS_PORT  # noqa: E402
from pebble import HTTP_PORT  # noqa: E402

ROUNDS = int(os.environ.get("PICKUP_ROUNDS", "2"))
CERTS = int(os.environ.get("PICKUP_CERTS", "3"))
WORKERS = int(os.environ.get("PICKUP_WORKERS", "4"))
TIMEOUT = 90.0      # per round: every certificate issued and installed

NGX_ISSUED = re.compile(r'acme: certificate "([^"]+)" issued')
NGX_ACTIVATED = re.compile(r'acme: certificate "([^"]+)" activated in all worker')
NGX_INSTALLED = re.compile(r'acme: certificate "([^"]+)" installed in worker process (\d+)')
APA_ISSUED = re.compile(r"mod_acme_auto: (\S+): new certificate")
APA_INSTALLED = re.compile(r"mod_acme_auto: (\S+): generation \d+ installed in pid (\d+)")


def names(r):
    return ["p%d-r%d.example.test" % (i, r) for i in range(CERTS)]


def nginx_conf(pebble, state, r):
    text = nginx_server.issuer_conf(pebble, state)
    for name in names(r):
        text += """
    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off;
             acme_certificate pebble; }
""" % (HTTPS_PORT, name)
    return text + """
    server { listen 127.0.0.1:%d; server_name %s; access_log off; }
""" % (HTTP_PORT, " ".join(names(r)))


def apache_conf(pebble, state, r):
    text = apache_server.issuer_conf(pebble, state)
    for name in names(r):
        text += """
<VirtualHost 127.0.0.1:%d>
    ServerName %s
    SSLEngine on
    AcmeCertificate pebble
</VirtualHost>
""" % (HTTPS_PORT, name)
    return text + """
<VirtualHost 127.0.0.1:%d>
    ServerName %s
    ServerAlias %s
</VirtualHost>
""" % (HTTP_PORT, names(r)[0], " ".join(names(r)[1:]))


class Tail:
    """The lines appended to a file, each with the monotonic time at which
    it was first read."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.rest = b""
        self.lines = []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        now = time.monotonic()
        self.offset += len(data)
        data = self.rest + data
        parts = data.split(b"\n")
        self.rest = parts.pop()
        self.lines.extend((now, p.decode(errors="replace")) for p in parts)


def one_round(kind, label, module, pebble, work, r):
    """{id: (issued->activated or None, issued->served in every worker)},
    start->first issued (s)."""
    state = os.path.join(work, "state-%s-%s-%d" % (kind, label, r))
    if kind == "nginx":
        srv = NginxServer(os.path.join(work, "ngx-%d-%s" % (r, label)),
                          workers=WORKERS, module=module)
        srv.write_conf(nginx_conf(pebble, state, r))
        log_path = srv.error_log_path
        issued_re, installed_re = NGX_ISSUED, NGX_INSTALLED
    else:
        srv = ApacheServer(os.path.join(work, "apa-%d-%s" % (r, label)),
                           children=WORKERS, module=module)
        srv.write_conf(apache_conf(pebble, state, r))
        log_path = srv.error_log_path
        issued_re, installed_re = APA_ISSUED, APA_INSTALLED
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    open(log_path, "ab").close()
    tail = Tail(log_path)
    issued, activated, installed = {}, {}, {}
    t_start = time.monotonic()
    try:
        srv.start()
        pids = set(srv.worker_pids() if kind == "nginx" else srv.child_pids())
        deadline = time.monotonic() + TIMEOUT
        while True:
            tail.poll()
            for t, line in tail.lines:
                m = issued_re.search(line)
                if m:
                    issued.setdefault(m.group(1), t)
                m = NGX_ACTIVATED.search(line) if kind == "nginx" else None
                if m:
                    activated.setdefault(m.group(1), t)
                m = installed_re.search(line)
                if m and m.group(1) in issued:
                    installed.setdefault(m.group(1), {}).setdefault(int(m.group(2)), t)
            tail.lines = []
            done = len(issued) == CERTS and all(
                pids <= set(installed.get(i, {})) for i in issued)
            if done:
                break
            if time.monotonic() > deadline or not srv.running():
                raise RuntimeError("%s round %d: not every certificate issued and "
                                   "installed in every process in %.0f s (issued %s, "
                                   "installed %s, pids %s); log:\n%s"
                                   % (kind, r, TIMEOUT, sorted(issued), installed,
                                      sorted(pids), srv.error_log()[-3000:]))
            time.sleep(0.001)
    finally:
        srv.stop()
    out = {}
    for i, t in issued.items():
        served = max(installed[i][p] for p in pids) - t
        out[i] = ((activated[i] - t) if i in activated else None, served)
    return out, min(issued.values()) - t_start


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main(argv):
    old = None
    kinds = ["nginx", "apache"]
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--old":
            old = args.pop(0)
        elif a == "--only":
            kinds = [args.pop(0)]
        else:
            raise SystemExit("usage: pickup.py [--old DIR] [--only nginx|apache]")
    builds = [("new", {"nginx": nginx_server.MODULE, "apache": apache_server.MODULE})]
    if old:
        builds.append(("old", {"nginx": os.path.join(old, "ngx_http_acme_module.so"),
                               "apache": os.path.join(old, "mod_acme_auto.so")}))
    res = {}
    with benchlib.session("ngx-acme-pickup-", True) as (work, pebble):
        for r in range(ROUNDS):
            order = builds if r % 2 == 0 else builds[::-1]
            for kind in kinds:
                for label, mods in order:
                    per_cert, start = one_round(kind, label, mods[kind], pebble, work, r)
                    entry = res.setdefault((kind, label), {"act": [], "all": [], "start": []})
                    entry["start"].append(start)
                    for cid, (act, served) in sorted(per_cert.items()):
                        if act is not None:
                            entry["act"].append(act)
                        entry["all"].append(served)
                        log("  round %d %-6s %-3s %-28s activated %s, every worker %6.1f ms"
                            % (r + 1, kind, label, cid,
                               "   -  " if act is None else "%6.1f ms" % (act * 1e3),
                               served * 1e3))
    print()
    print("%-7s %-5s %8s %22s %22s %16s" % ("server", "build", "samples",
                                           "activated (med/max ms)",
                                           "every worker (med/max)", "start->issued s"))
    last = []
    for kind in kinds:
        for label, _ in builds:
            e = res[(kind, label)]
            act = ("%8.1f / %-8.1f" % (median(e["act"]) * 1e3, max(e["act"]) * 1e3)
                   if e["act"] else "%19s" % "-")
            print("%-7s %-5s %8d %22s %10.1f / %-9.1f %16.2f"
                  % (kind, label, len(e["all"]), act, median(e["all"]) * 1e3,
                     max(e["all"]) * 1e3, median(e["start"])))
            last.append("%s %s = %.0f ms (max %.0f)" % (kind, label, median(e["all"]) * 1e3,
                                                        max(e["all"]) * 1e3))
    print()
    print("issuance -> served in every worker: " + ", ".join(last))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""N managed certificates on one server (issue 9): see scale.sh.

Per server (nginx, then Apache), on a fresh store, against pebble:
  issue     server start -> every one of the N names presents a certificate
            that verifies against pebble's root (the module's own ordering:
            max_orders in flight, the most urgent first)
  accounts  accounts pebble created for it (must be 1)
  memory    Rss (/proc/PID/smaps_rollup) of the smallest worker / child
            with the N certificates installed, minus the same server with the
            same N certificates as plain files (ssl_certificate /
            SSLCertificateFile) measured in the same run: what the module
            adds per certificate beyond the certificate itself (per mapping,
            and as Pss and private memory too: bench/memprobe.sh)
  restart   stop, start on the stored certificates: start -> every name
            verified again (the client's own sweep included)
  status    bytes and time of GET /acme-status (median of 5)

A name is "verified" by one full handshake (SNI = the name) whose chain
verifies against pebble's root; the sweep runs SCALE_CLIENTS threads and
retries the names not verified yet every 50 ms.  While issuing, it tries
only the names whose bundle is in the store (checked on disk every 0.25 s):
sweeping every name not served yet made the bench itself a handshake load
(each on the placeholder) that competed with the issuance for the two
cores; polling the status location instead grew the server's memory (an
Apache thread keeps the pool memory of each 1 MB status answer).

Environment: SCALE_CLIENTS (handshake threads, default 8), SCALE_WORKERS
(nginx workers / Apache children, default 2), SCALE_TIMEOUT (seconds for
the issue phase, default 900).
"""

import concurrent.futures
import os
import ssl
import socket
import sys
import time

import benchlib
from benchlib import log, split_bundle

import apache_server  # noqa: E402
import nginx_server  # noqa: E402
from apache_server import ApacheServer  # noqa: E402
from nginx_server import NginxServer, HTTPS_PORT  # noqa: E402
from pebble import HTTP_PORT  # noqa: E402
from tlsutil import http_get  # noqa: E402

CLIENTS = int(os.environ.get("SCALE_CLIENTS", "8"))
WORKERS = int(os.environ.get("SCALE_WORKERS", "2"))
TIMEOUT = float(os.environ.get("SCALE_TIMEOUT", "900"))


def names(n):
    return ["s%04d.example.test" % i for i in range(n)]


def cert_id(name):
    return "%s_ecdsa-256" % name


# -- configurations ----------------------------------------------------------
def nginx_conf(pebble, state, n, static=None):
    """static: {name: (key_file, chain_file)} -> plain files instead."""
    zone = max(1, n * 24 // 1000 + 1)       # MB; the status of 1000 certs fits 24m
    text = ""
    if static is None:
        text += nginx_server.issuer_conf(pebble, state) + \
            "    acme_shared_zone zone=ngx_acme:%dm;\n" % zone
    for name in names(n):
        if static is None:
            tls = "acme_certificate pebble;"
        else:
            tls = "ssl_certificate %s; ssl_certificate_key %s;" % (static[name][1],
                                                                   static[name][0])
        text += ("    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off; %s }\n"
                 % (HTTPS_PORT, name, tls))
    status = "" if static is not None else "location = /acme-status { acme_status; }"
    return text + """
    server { listen 127.0.0.1:%d default_server; server_name _; access_log off; %s }
""" % (HTTP_PORT, status)


def apache_conf(pebble, state, n, static=None):
    text = ""
    if static is None:
        text += apache_server.issuer_conf(pebble, state)
    for name in names(n):
        if static is None:
            tls = "AcmeCertificate pebble"
        else:
            tls = "SSLCertificateFile %s\n    SSLCertificateKeyFile %s" % (static[name][1],
                                                                          static[name][0])
        text += """
<VirtualHost 127.0.0.1:%d>
    ServerName %s
    SSLEngine on
    %s
</VirtualHost>
""" % (HTTPS_PORT, name, tls)
    status = "" if static is not None else """
    <Location /acme-status>
        SetHandler acme-status
    </Location>"""
    return text + """
<VirtualHost 127.0.0.1:%d>
    ServerName status.example.test%s
</VirtualHost>
""" % (HTTP_PORT, status)


# -- measurements ------------------------------------------------------------
def stored_names(names_, state):
    """The names whose bundle the server has written to its store (read from
    the file system: no request to the server, whose memory is measured
    after the sweep)."""
    return set(nm for nm in names_
               if os.path.exists(os.path.join(state, "certs", cert_id(nm), "bundle.pem")))


def verify_all(all_names, root, deadline, alive, state=None):
    """Sweeps until every name presents a chain verifying against root
    (state: only the names whose bundle is in that store).  Returns the
    seconds it took."""
    ctx = ssl.create_default_context(cafile=root)
    todo = list(all_names)
    t0 = time.monotonic()

    def one(name):
        try:
            with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname=name):
                    return True
        except (OSError, ssl.SSLError):
            return False

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        while todo:
            batch = todo
            if state is not None:
                stored = stored_names(todo, state)
                batch = [nm for nm in todo if nm in stored]
            ok = list(pool.map(one, batch))
            failed = set(nm for nm, good in zip(batch, ok) if not good)
            done = set(batch) - failed
            todo = [nm for nm in todo if nm not in done]
            if not todo:
                break
            if time.monotonic() > deadline or not alive():
                raise RuntimeError("%d of %d names not served with a pebble certificate "
                                   "(e.g. %s)" % (len(todo), len(all_names), todo[:3]))
            time.sleep(0.25 if state is not None else 0.05)
    return time.monotonic() - t0


def memory_kb(pid):
    """(Rss, Private_Clean + Private_Dirty) of pid, KB."""
    rss = private = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    return rss, private


def serving_pids(kind, srv):
    return srv.worker_pids() if kind == "nginx" else srv.child_pids()


def serving_memory_kb(kind, srv):
    """(Rss, private) of the smallest worker / child: one that serves and
    does not drive ACME (the ACME client's own memory is per server, not
    per certificate)."""
    return min(memory_kb(p) for p in serving_pids(kind, srv))


def status_probe():
    sizes, times = [], []
    for _ in range(5):
        t0 = time.monotonic()
        code, _, body = http_get("http://127.0.0.1:%d/acme-status" % HTTP_PORT,
                                 host="status.example.test", timeout=30)
        times.append(time.monotonic() - t0)
        assert code == 200, code
        sizes.append(len(body))
    return sizes[-1], sorted(times)[2]


def make_server(kind, work, tag):
    if kind == "nginx":
        return NginxServer(os.path.join(work, "ngx-" + tag), workers=WORKERS)
    return ApacheServer(os.path.join(work, "apa-" + tag), children=WORKERS)


def run(kind, n, pebble, work):
    conf = nginx_conf if kind == "nginx" else apache_conf
    state = os.path.join(work, "state-" + kind)
    root = pebble.write_root(os.path.join(work, "root-%s.pem" % kind))
    all_names = names(n)
    res = {}
    accounts0 = pebble.accounts_created()

    srv = make_server(kind, work, "managed")
    srv.write_conf(conf(pebble, state, n))
    t0 = time.monotonic()
    srv.start(timeout=120)
    try:
        res["issue"] = (time.monotonic() - t0) + verify_all(
            all_names, root, t0 + TIMEOUT, srv.running, state=state)
        res["accounts"] = pebble.accounts_created() - accounts0
        time.sleep(1)           # let the workers settle after the last swap
        res["mem_managed"] = serving_memory_kb(kind, srv)
        res["status_bytes"], res["status_s"] = status_probe()
    finally:
        srv.stop()

    log("%s: %d issued in %.1f s; restarting on the stored certificates" % (kind, n, res["issue"]))
    srv = make_server(kind, work, "restart")
    srv.write_conf(conf(pebble, state, n))
    t0 = time.monotonic()
    srv.start(timeout=120)
    try:
        res["start_returned"] = time.monotonic() - t0
        res["restart"] = res["start_returned"] + verify_all(
            all_names, root, t0 + 120, srv.running)
        time.sleep(1)
        res["mem_restart"] = serving_memory_kb(kind, srv)
    finally:
        srv.stop()

    # the same certificates as plain files: the memory baseline
    static = {}
    pem_dir = os.path.join(work, "pem-" + kind)
    os.makedirs(pem_dir, exist_ok=True)
    for name in all_names:
        key_pem, chain_pem = split_bundle(os.path.join(state, "certs", cert_id(name),
                                                       "bundle.pem"))
        kf, cf = os.path.join(pem_dir, name + ".key"), os.path.join(pem_dir, name + ".crt")
        with open(kf, "w") as f:
            f.write(key_pem)
        with open(cf, "w") as f:
            f.write(chain_pem)
        static[name] = (kf, cf)
    srv = make_server(kind, work, "static")
    srv.write_conf(conf(pebble, state, n, static=static))
    t0 = time.monotonic()
    srv.start(timeout=120)
    try:
        res["static_start"] = (time.monotonic() - t0) + verify_all(
            all_names, root, t0 + 120, srv.running)
        time.sleep(1)
        res["mem_static"] = serving_memory_kb(kind, srv)
    finally:
        srv.stop()
    if os.environ.get("SCALE_KEEP"):
        import shutil
        shutil.copytree(work, os.environ["SCALE_KEEP"] + "-" + kind, symlinks=True)
    return res


def main(argv):
    kinds = ["nginx", "apache"]
    args = list(argv)
    n = 1000
    while args:
        a = args.pop(0)
        if a == "--only":
            kinds = [args.pop(0)]
        elif a.isdigit():
            n = int(a)
        else:
            raise SystemExit("usage: scale.py [N] [--only nginx|apache]")
    results = {}
    with benchlib.session("ngx-acme-scale-", True) as (work, pebble):
        for kind in kinds:
            results[kind] = run(kind, n, pebble, work)
            log("%s: %r" % (kind, results[kind]))
    print()
    print("N = %d certificates (one name each, ecdsa:256), %d workers/children" % (n, WORKERS))
    print("memory: Rss of the smallest worker/child, minus the same server serving the same")
    print("certificates from files (static), per certificate; 'issued' after issuing them all,")
    print("'restarted' after the restart on the stored certificates")
    print("%-7s %8s %8s %10s %10s %12s %12s %9s %9s"
          % ("server", "issue s", "accounts", "restart s", "static s",
             "KB/c issued", "KB/c restart", "status KB", "status ms"))
    last = []
    for kind in kinds:
        r = results[kind]
        extra = (r["mem_managed"][0] - r["mem_static"][0]) / n
        extra_r = (r["mem_restart"][0] - r["mem_static"][0]) / n
        print("%-7s %8.1f %8d %10.2f %10.2f %12.1f %12.1f %9.1f %9.1f"
              % (kind, r["issue"], r["accounts"], r["restart"], r["static_start"],
                 extra, extra_r, r["status_bytes"] / 1024.0, r["status_s"] * 1e3))
        last.append("%s: all issued %.0f s, accounts %d, restart %.2f s (static %.2f s), "
                    "%.1f KB/cert"
                    % (kind, r["issue"], r["accounts"], r["restart"], r["static_start"],
                       max(extra, extra_r)))
    print()
    print("scale N=%d: " % n + "; ".join(last))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

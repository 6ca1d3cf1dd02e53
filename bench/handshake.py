#!/usr/bin/python3
"""Full-handshake throughput of one nginx worker: managed certificate vs the
same certificate as a static file vs the same PEM through
"ssl_certificate data:$var" (parsed at every handshake).  See handshake.sh.

Environment: BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 3),
BENCH_CLIENTS (parallel openssl s_time processes, default 2).
--no-managed: skip pebble and the managed variant (openssl-made certificates;
checks the bench itself without the module).
"""

import math
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "t", "integration"))

from nginx_server import NginxServer, make_world_traversable_tmpdir  # noqa: E402
from pebble import HTTP_PORT, PORT_OFFSET, Pebble, make_ca, make_leaf  # noqa: E402
from tlsutil import wait_acme_cert  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))

KEYS = [  # (label, key= spec, name, base port)
    ("ecdsa:256", "ecdsa:256", "e.example.test", 9443 + PORT_OFFSET),
    ("rsa:2048", "rsa:2048", "r.example.test", 9453 + PORT_OFFSET),
]
VARIANTS = ["managed", "static", "data"]   # port offsets 0, 1, 2

ISSUER = """
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        state_path @STATE@;
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
    }
"""

HTTP01 = """
    server {
        listen 127.0.0.1:%d;
        server_name e.example.test r.example.test;
        access_log off;
    }
""" % HTTP_PORT

COMMON = """
    keepalive_timeout 0;
    ssl_session_cache off;
    ssl_session_tickets off;
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def split_bundle(path):
    """bundle.pem (key PEM + chain PEM) -> (key_pem, chain_pem)."""
    with open(path) as f:
        text = f.read()
    i = text.index("-----BEGIN CERTIFICATE-----")
    return text[:i].strip() + "\n", text[i:].strip() + "\n"


def managed_conf(state, pebble):
    servers = ""
    for label, spec, name, port in KEYS:
        servers += """
    server {
        listen 127.0.0.1:%d ssl;
        server_name %s;
        acme_certificate pebble key=%s;
        access_log off;
    }
""" % (port, name, spec)
    return ISSUER + COMMON + servers + HTTP01


def chunked_map(var, text, size=2000):
    """nginx limits one configuration token to its 4 KB read buffer: the PEM
    goes into several map variables, joined by a last map."""
    lines, chunks, cur = text.splitlines(True), [], ""
    for line in lines:
        if len(cur) + len(line) > size:
            chunks.append(cur)
            cur = ""
        cur += line
    if cur:
        chunks.append(cur)
    out = ""
    for i, c in enumerate(chunks):
        out += '    map "" $%s_%d { default "%s"; }\n' % (var, i, c)
    out += '    map "" $%s { default "data:%s"; }\n' % (
        var, "".join("$%s_%d" % (var, i) for i in range(len(chunks))))
    return out


def bench_conf(with_managed, files):
    text = COMMON
    if with_managed:
        text = ISSUER + text + HTTP01
    for label, spec, name, port in KEYS:
        key_file, chain_file, key_pem, chain_pem = files[label]
        v = label.replace(":", "_")
        if with_managed:
            text += """
    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off;
             acme_certificate pebble key=%s; }
""" % (port, name, spec)
        text += """
    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off;
             ssl_certificate %s; ssl_certificate_key %s; }
""" % (port + 1, name, chain_file, key_file)
        text += chunked_map("bench_%s_crt" % v, chain_pem)
        text += chunked_map("bench_%s_key" % v, key_pem)
        text += """
    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off;
             ssl_certificate $bench_%s_crt; ssl_certificate_key $bench_%s_key; }
""" % (port + 2, name, v, v)
    return text


NCPU = os.cpu_count() or 1
# with 2+ CPUs the worker gets CPU 0 and the clients the others, so that
# client and server do not steal each other's time slices
PIN_WORKER = "worker_cpu_affinity %s;" % ("0" * (NCPU - 1) + "1") if NCPU >= 2 else ""
CLIENT_PIN = ["taskset", "-c", "1-%d" % (NCPU - 1)] if NCPU >= 2 and shutil.which("taskset") else []


def s_time(port, seconds):
    """Full handshakes/s from CLIENTS parallel `openssl s_time -new`."""
    procs = []
    t0 = time.monotonic()
    for _ in range(CLIENTS):
        procs.append(subprocess.Popen(
            CLIENT_PIN + ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
             "-time", str(int(math.ceil(seconds)))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    total = 0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 60)
        text = out.decode(errors="replace")
        n = None
        for line in text.splitlines():
            # "1234 connections in 3.01s; ..."  (the first such line is -new)
            parts = line.split()
            if len(parts) > 3 and parts[1] == "connections" and parts[2] == "in" \
                    and parts[3].endswith("s;"):
                n = int(parts[0])
                break
        if n is None or p.returncode != 0:
            raise RuntimeError("s_time on port %d failed:\n%s" % (port, text[-2000:]))
        total += n
    wall = time.monotonic() - t0
    return total / wall


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main(argv):
    with_managed = "--no-managed" not in argv
    work = make_world_traversable_tmpdir("ngx-acme-bench-")
    pebble = None
    srv = None
    ok = False
    try:
        files = {}
        if with_managed:
            pebble = Pebble(work, nonce_reject=0)
            pebble.start()
            root = pebble.write_root(os.path.join(work, "root.pem"))
            state = os.path.join(work, "state", "pebble")
            srv = NginxServer(os.path.join(work, "issue"), workers=1)
            srv.write_conf(managed_conf(state, pebble), URI=pebble.directory_url,
                           STATE=state, CA=pebble.ca_pem)
            srv.start(ports=[p for _, _, _, p in KEYS])
            log("waiting for the managed certificates ...")
            for label, spec, name, port in KEYS:
                wait_acme_cert(port, name, root, 120, proc_alive=srv.running)
            srv.stop()
            srv = None
            for label, spec, name, port in KEYS:
                cid = "%s_%s" % (name, spec.replace(":", "-"))
                key_pem, chain_pem = split_bundle(os.path.join(state, "certs", cid,
                                                               "bundle.pem"))
                files[label] = (key_pem, chain_pem)
        else:
            ca_key, ca_crt = make_ca(work, "bench-ca")
            for label, spec, name, port in KEYS:
                kf = os.path.join(work, "k-" + label.replace(":", "_") + ".pem")
                if spec.startswith("rsa"):
                    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                                    "-pkeyopt", "rsa_keygen_bits:2048", "-out", kf],
                                   check=True, capture_output=True)
                else:
                    subprocess.run(["openssl", "genpkey", "-algorithm", "EC",
                                    "-pkeyopt", "ec_paramgen_curve:P-256", "-out", kf],
                                   check=True, capture_output=True)
                kf2, crt = make_leaf(work, ca_key, ca_crt, "leaf-" + label.replace(":", "_"),
                                     ["DNS:" + name])
                if spec.startswith("rsa"):   # make_leaf makes P-256: re-sign for RSA
                    subprocess.run(["openssl", "req", "-new", "-key", kf, "-subj", "/CN=" + name,
                                    "-out", crt + ".csr"], check=True, capture_output=True)
                    subprocess.run(["openssl", "x509", "-req", "-in", crt + ".csr", "-CA", ca_crt,
                                    "-CAkey", ca_key, "-days", "2", "-out", crt],
                                   check=True, capture_output=True)
                else:
                    kf = kf2
                with open(kf) as f:
                    key_pem = f.read()
                with open(crt) as f, open(ca_crt) as g:
                    chain_pem = f.read() + g.read()
                files[label] = (key_pem, chain_pem)

        # the same key and chain as plain files for the static variant
        full = {}
        for label, (key_pem, chain_pem) in files.items():
            base = os.path.join(work, label.replace(":", "_"))
            with open(base + ".key", "w") as f:
                f.write(key_pem)
            os.chmod(base + ".key", 0o600)
            with open(base + ".crt", "w") as f:
                f.write(chain_pem)
            full[label] = (base + ".key", base + ".crt", key_pem, chain_pem)

        srv = NginxServer(os.path.join(work, "bench"), workers=1, loglevel="warn",
                          **({} if with_managed else {"module": None}))
        values = {}
        if with_managed:
            values = dict(URI=pebble.directory_url, STATE=state, CA=pebble.ca_pem)
        srv.write_conf(bench_conf(with_managed, full), main_extra=PIN_WORKER, **values)
        rc, out = srv.test_config()
        if rc != 0:
            raise RuntimeError(out)
        ports = []
        for _, _, _, port in KEYS:
            ports += [port + i for i in range(len(VARIANTS))
                      if with_managed or VARIANTS[i] != "managed"]
        srv.start(ports=ports)
        if with_managed:   # served from the store at start, as after any restart
            for label, spec, name, port in KEYS:
                wait_acme_cert(port, name, root, 30, proc_alive=srv.running)

        variants = VARIANTS if with_managed else VARIANTS[1:]
        rates = {(k[0], v): [] for k in KEYS for v in variants}
        log("one worker%s, full handshakes, %d rounds x %.0f s per run, %d client(s)"
            % (" (CPU 0, clients on the others)" if PIN_WORKER else "",
               ROUNDS, SECONDS, CLIENTS))
        for r in range(ROUNDS):
            for label, spec, name, port in KEYS:
                for v in variants:      # alternating: no variant owns a warm or cold phase
                    rate = s_time(port + VARIANTS.index(v), SECONDS)
                    rates[(label, v)].append(rate)
                    log("  round %d %-9s %-7s %8.1f handshakes/s" % (r + 1, label, v, rate))

        print()
        print("%-10s %-8s %12s" % ("key", "variant", "handshakes/s"))
        med = {}
        for label, _, _, _ in KEYS:
            for v in variants:
                xs = sorted(rates[(label, v)])
                med[(label, v)] = xs[len(xs) // 2]
                print("%-10s %-8s %12.1f" % (label, v, med[(label, v)]))
        print()
        for label, _, _, _ in KEYS:
            print("ratio data:$var/static (%s) = %.3f"
                  % (label, med[(label, "data")] / med[(label, "static")]))
        if with_managed:
            per_key = []
            for label, _, _, _ in KEYS:
                x = med[(label, "managed")] / med[(label, "static")]
                per_key.append(x)
                print("ratio managed/static (%s) = %.3f" % (label, x))
            print("ratio managed/static = %.3f" % geomean(per_key))
        ok = True
        return 0
    finally:
        if srv is not None:
            alerts = srv.alerts()
            srv.stop()
            if alerts:
                log("nginx alerts:\n" + "\n".join(alerts[-20:]))
        if pebble is not None:
            pebble.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("kept %s" % work)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

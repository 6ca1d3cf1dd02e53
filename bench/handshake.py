#!/usr/bin/python3
"""Full-handshake throughput and server CPU per handshake of one nginx
worker: managed certificate vs the same certificate as a static file vs the
same PEM through "ssl_certificate data:$var" (parsed at every handshake),
ECDSA and RSA, TLS 1.2 and TLS 1.3 (benchlib.cells()).  See handshake.sh;
the client, timing and summary are in benchlib.py.

Environment: BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 3),
BENCH_CLIENTS (parallel openssl s_time processes, default 2), BENCH_PROTOS
(default "tls1_2 tls1_3").
--no-managed: skip pebble and the managed variant (openssl-made certificates;
checks the bench itself without the module).
--instructions: the instructions the worker executes per full handshake under
valgrind's callgrind instead of timed rounds (benchlib.count_rounds; as
handshake_apache.py --instructions); last line
"instructions ratio managed/static = X".
"""

import os
import subprocess
import sys

import benchlib
from benchlib import KEYS, log

from nginx_server import NginxServer, issuer_conf  # noqa: E402
from pebble import HTTP_PORT, PORT_OFFSET  # noqa: E402
from tlsutil import wait_acme_cert  # noqa: E402

BASE_PORT = {"ecdsa:256": 9443 + PORT_OFFSET, "rsa:2048": 9453 + PORT_OFFSET}
VARIANTS = ["managed", "static", "data"]   # port offsets 0, 1, 2


def port(label, variant):
    return BASE_PORT[label] + VARIANTS.index(variant)


HTTP01 = """
    server {
        listen 127.0.0.1:%d;
        server_name e.example.test r.example.test;
        access_log off;
        location = /acme-status { acme_status; }    # --instructions' marker
    }
""" % HTTP_PORT

COMMON = """
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_timeout 0;
    ssl_session_cache off;
    ssl_session_tickets off;
"""


def managed_conf(pebble, state):
    servers = ""
    for label, name in KEYS:
        servers += """
    server {
        listen 127.0.0.1:%d ssl;
        server_name %s;
        acme_certificate pebble key=%s;
        access_log off;
    }
""" % (port(label, "managed"), name, label)
    return issuer_conf(pebble, state) + COMMON + servers + HTTP01


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


def bench_conf(pebble, state, files):
    """pebble None: without the managed variant."""
    text = COMMON
    with_managed = pebble is not None
    if with_managed:
        text = issuer_conf(pebble, state) + text + HTTP01
    for label, name in KEYS:
        key_file, chain_file, key_pem, chain_pem = files[label]
        v = label.replace(":", "_")
        if with_managed:
            text += """
    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off;
             acme_certificate pebble key=%s; }
""" % (port(label, "managed"), name, label)
        text += """
    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off;
             ssl_certificate %s; ssl_certificate_key %s; }
""" % (port(label, "static"), name, chain_file, key_file)
        text += chunked_map("bench_%s_crt" % v, chain_pem)
        text += chunked_map("bench_%s_key" % v, key_pem)
        text += """
    server { listen 127.0.0.1:%d ssl; server_name %s; access_log off;
             ssl_certificate $bench_%s_crt; ssl_certificate_key $bench_%s_key; }
""" % (port(label, "data"), name, v, v)
    return text


# the one worker on CPU 0 (benchlib pins the clients to the others)
PIN_WORKER = ("worker_cpu_affinity %s;" % ("0" * (benchlib.NCPU - 1) + "1")
              if benchlib.PINNED else "")


class BenchNginx(NginxServer):
    valgrind = None     # [valgrind, args...]: run the server under it

    def cmd(self, *args):
        return (self.valgrind if self.valgrind and args[:1] != ("-t",) else []) \
            + super().cmd(*args)


def main(argv):
    with_managed = "--no-managed" not in argv
    count = "--instructions" in argv
    if count and not with_managed:
        raise SystemExit("--instructions needs the managed variant")
    with benchlib.session("ngx-acme-bench-", with_managed) as (work, pebble):
        state = os.path.join(work, "state", "pebble")
        if with_managed:
            root = pebble.write_root(os.path.join(work, "root.pem"))
            srv = NginxServer(os.path.join(work, "issue"), workers=1)
            srv.write_conf(managed_conf(pebble, state))
            try:
                srv.start(ports=[port(label, "managed") for label, _ in KEYS])
                log("waiting for the managed certificates ...")
                for label, name in KEYS:
                    wait_acme_cert(port(label, "managed"), name, root, 120,
                                   proc_alive=srv.running)
            finally:
                srv.stop()
            bundles = benchlib.store_bundles(state)
        else:
            bundles = benchlib.local_ca_bundles(work)
        full = benchlib.write_pem_files(work, bundles)

        srv = BenchNginx(os.path.join(work, "bench"), workers=1, loglevel="warn",
                         **({} if with_managed else {"module": None}))
        cg_dir = os.path.join(work, "callgrind")
        if count:
            os.makedirs(cg_dir)
            os.chmod(cg_dir, 0o777)         # the worker runs as www-data
            srv.valgrind = benchlib.callgrind_cmd(cg_dir, "ngx_acme_status_handler")
        srv.write_conf(bench_conf(pebble, state, full), main_extra=PIN_WORKER)
        rc, out = srv.test_config()
        if rc != 0:
            raise RuntimeError(out)
        variants = VARIANTS if with_managed else VARIANTS[1:]
        try:
            srv.start(timeout=150 if count else 30, wait_workers=not count,
                      ports=[port(label, v) for label, _ in KEYS for v in variants])
            if with_managed:   # served from the store at start, as after any restart
                for label, name in KEYS:
                    wait_acme_cert(port(label, "managed"), name, root, 150 if count else 30,
                                   proc_alive=srv.running)

            ports = {(label, v): port(label, v) for label, _ in KEYS for v in variants}
            if count:
                # under valgrind ps shows no "worker process" title: the
                # master's one child (workers=1, no cache) is the worker
                r = subprocess.run(["ps", "--ppid", str(srv.proc.pid), "-o", "pid="],
                                   stdout=subprocess.PIPE, timeout=10, check=True)
                worker = [int(x) for x in r.stdout.split()]
                if len(worker) != 1:
                    raise RuntimeError("not one worker: %s" % worker)
                counts = benchlib.count_rounds(ports, variants, worker[0], cg_dir,
                                               HTTP_PORT)
            else:
                rates = benchlib.run_rounds("one nginx worker", ports, variants,
                                            pids=srv.worker_pids())
        finally:
            alerts = srv.alerts()
            srv.stop()
            if alerts:
                log("nginx alerts:\n" + "\n".join(alerts[-20:]))
        if count:
            benchlib.report_instructions(counts, variants, ["data", "managed"])
            return 0
        benchlib.report(rates, variants, other_ratios=[("data:$var", "data")],
                        managed=with_managed)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

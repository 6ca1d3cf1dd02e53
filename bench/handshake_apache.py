#!/usr/bin/python3
"""Full-handshake throughput of one Apache child (mpm_event, mod_ssl +
mod_acme_auto): managed certificates vs the same certificate as a static
SSLCertificateFile.  See handshake-apache.sh; the client, timing and summary
are in benchlib.py.

mod_acme_auto serves a managed certificate in one of two ways, and both are
measured, each on a vhost of its own (own port, own SSL_CTX) in one server:
  managed  issued while the server runs: the child parsed it once and wrote
           it into its copy of mod_ssl's SSL_CTX while no connection was in
           flight (the cert callback only compares pointers) -- the path
           after every issuance/renewal;
  stored   found in the store at startup: handed to mod_ssl as a file
           (ssl_add_cert_files), the callback runs and finds nothing newer;
  static   plain SSLCertificateFile/SSLCertificateKeyFile, no module.
"stored" and "static" serve the very same certificate (issued by a first
server run); "managed" serves a certificate of the same key type from the
same pebble intermediate, issued by the benchmarked server itself (a hot swap
cannot install a file-configured certificate).  The headline ratio is
managed/static.

Environment: BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 3),
BENCH_CLIENTS (parallel openssl s_time processes, default 2).
--no-managed: static variant only, no pebble, no module (checks the bench).
--instructions: instead of timed rounds, the server runs under valgrind's
callgrind and the bench counts the instructions the child executes per full
handshake (BENCH_HANDSHAKES handshakes from one client between two requests
for the status page, before whose handler callgrind dumps its counters,
minus such an interval without handshakes) for each cell and variant, BENCH_ROUNDS times (default 3):
unlike CPU time on a shared machine, the count barely moves between runs
(the handshake's own random values only), so it resolves differences of a
fraction of a per cent.  Last line "instructions ratio managed/static = X"
(the worst cell).
"""

import os
import re
import sys

import benchlib
from benchlib import KEYS, log

import apache_server  # noqa: E402
from apache_server import ApacheServer, issuer_conf  # noqa: E402
from pebble import HTTP_PORT, PORT_OFFSET  # noqa: E402
from tlsutil import wait_acme_cert  # noqa: E402

BASE_PORT = {"ecdsa:256": 9463 + PORT_OFFSET, "rsa:2048": 9473 + PORT_OFFSET}
VARIANTS = ["managed", "stored", "static"]   # port offsets 0, 1, 2
# the hot-swapped certificate has names of its own: "e.example.test" ->
# "hot-e.example.test", so that it is ordered by the benchmarked server
HOT_PREFIX = "hot-"


def port(label, variant):
    return BASE_PORT[label] + VARIANTS.index(variant)


# One child process with a fixed thread pool (ServerLimit 1: no second child
# is ever started), so every variant shares one CPU budget.
apache_server.MPM_CONF["event-one-child"] = """\
LoadModule mpm_event_module @MODDIR@/mod_mpm_event.so
StartServers 1
ServerLimit 1
ThreadLimit 16
ThreadsPerChild 16
MinSpareThreads 1
MaxSpareThreads 16
MaxRequestWorkers 16
MaxConnectionsPerChild 0
"""


class BenchApache(ApacheServer):
    """Full handshakes only (no session cache, no tickets, no keep-alive);
    the whole server on benchlib.SERVER_CPU (children inherit the
    affinity), the clients on the other CPUs."""

    def __init__(self, directory, **kw):
        kw.setdefault("loglevel", "warn acme_auto:debug" if kw.get("module", 1)
                      else "warn")
        super().__init__(directory, mpm="event-one-child", children=1, **kw)

    def render(self, body, **values):
        text = super().render(body, **values)
        text = re.sub(r"(?m)^SSLSessionCache .*$", "SSLSessionCache none", text)
        text = re.sub(r"(?m)^KeepAlive .*$", "KeepAlive Off", text)
        return text

    valgrind = None     # [valgrind, args...]: run the server under it

    def cmd(self, *args):
        pin = ["taskset", "-c", str(benchlib.SERVER_CPU)] if benchlib.PINNED else []
        if self.valgrind and args[:1] != ("-t",):
            pin = pin + self.valgrind
        return pin + super().cmd(*args)


def issuer(pebble, state):
    return "\nSSLSessionTickets off\n" + issuer_conf(pebble, state)

VHOST = """
<VirtualHost 127.0.0.1:%d>
    ServerName %s
    SSLEngine on
    SSLSessionTickets off
%s
</VirtualHost>
"""


def listen(ports, https_port):
    return "".join("Listen 127.0.0.1:%d\n" % p for p in ports if p != https_port)


def http01(names):
    # the status page: --instructions' marker request
    return """
<VirtualHost 127.0.0.1:%d>
    ServerName %s
    ServerAlias %s
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>
""" % (HTTP_PORT, names[0], " ".join(names[1:]))


def issue_conf(pebble, state, https_port):
    """First run: the certificates that "stored" and "static" will serve."""
    ports = [port(label, "stored") for label, _ in KEYS]
    text = issuer(pebble, state) + listen(ports, https_port)
    for label, name in KEYS:
        text += VHOST % (port(label, "stored"), name,
                         "    AcmeCertificate pebble key=%s" % label)
    return text + http01([name for _, name in KEYS])


def bench_conf(pebble, state, files, https_port, variants):
    """pebble None: without the managed variants."""
    with_managed = pebble is not None
    ports = [port(label, v) for label, _ in KEYS for v in variants]
    text = (issuer(pebble, state) if with_managed else "SSLSessionTickets off\n") \
        + listen(ports, https_port)
    for label, name in KEYS:
        key_file, chain_file, _, _ = files[label]
        if with_managed:
            text += VHOST % (port(label, "managed"), HOT_PREFIX + name,
                             "    AcmeCertificate pebble key=%s" % label)
            text += VHOST % (port(label, "stored"), name,
                             "    AcmeCertificate pebble key=%s" % label)
        text += VHOST % (port(label, "static"), name,
                         "    SSLCertificateFile %s\n    SSLCertificateKeyFile %s"
                         % (chain_file, key_file))
    if with_managed:
        text += http01([n for _, name in KEYS for n in (name, HOT_PREFIX + name)])
    return text


def check_config(srv):
    rc, out = srv.test_config()
    if rc != 0:
        raise RuntimeError(out)


def main(argv):
    with_managed = "--no-managed" not in argv
    count = "--instructions" in argv
    if count and not with_managed:
        raise SystemExit("--instructions needs the managed variants")
    slow = 5 if count else 1        # valgrind: everything takes longer
    variants = VARIANTS if with_managed else ["static"]
    with benchlib.session("apache-acme-bench-", with_managed) as (work, pebble):
        state = os.path.join(work, "state", "pebble")
        if with_managed:
            root = pebble.write_root(os.path.join(work, "root.pem"))
            https_port = port(KEYS[0][0], "stored")
            srv = BenchApache(os.path.join(work, "issue"), https_port=https_port)
            srv.write_conf(issue_conf(pebble, state, https_port))
            check_config(srv)
            try:
                srv.start()
                log("waiting for the certificates of the static variant ...")
                for label, name in KEYS:
                    wait_acme_cert(port(label, "stored"), name, root, 120,
                                   proc_alive=srv.running)
            except Exception:
                log("apache error.log (tail):\n" + srv.error_log()[-3000:])
                raise
            finally:
                srv.stop()
            bundles = benchlib.store_bundles(state)
        else:
            bundles = benchlib.local_ca_bundles(work)
        files = benchlib.write_pem_files(work, bundles)

        https_port = port(KEYS[0][0], variants[0])
        srv = BenchApache(os.path.join(work, "bench"), https_port=https_port,
                          **({} if with_managed else {"module": None}))
        srv.write_conf(bench_conf(pebble, state, files, https_port, variants))
        check_config(srv)
        cg_dir = os.path.join(work, "callgrind")
        if count:
            os.makedirs(cg_dir)
            os.chmod(cg_dir, 0o777)         # the child runs as www-data
            srv.valgrind = benchlib.callgrind_cmd(cg_dir, "acme_auto_status_handler")
        try:
            srv.start(timeout=30 * slow,
                      ports=[port(label, v) for label, _ in KEYS for v in variants])
            child = srv.child_pids()
            if with_managed:
                log("waiting for the managed certificates (ordered by the benchmarked child) ...")
                for label, name in KEYS:
                    wait_acme_cert(port(label, "managed"), HOT_PREFIX + name, root,
                                   120 * slow, proc_alive=srv.running)
                    wait_acme_cert(port(label, "stored"), name, root, 10 * slow,
                                   proc_alive=srv.running)
                # evidence that "managed" is the callback path: the benchmarked
                # child parsed each new certificate itself, off the handshake path
                hot = {cid for cid, _, pid in srv.installed() if pid in child}
                want = {"%s%s_%s" % (HOT_PREFIX, name, label.replace(":", "-"))
                        for label, name in KEYS}
                log("child %s installed %s" % (child, sorted(hot)))
                if not want <= hot:
                    raise RuntimeError("not installed by the benchmarked child: %s"
                                       % sorted(want - hot))
            if srv.child_pids() != child:
                raise RuntimeError("the child changed: %s -> %s" % (child, srv.child_pids()))

            ports = {(label, v): port(label, v) for label, _ in KEYS for v in variants}
            if count:
                counts = benchlib.count_rounds(ports, variants, child[0], cg_dir, HTTP_PORT)
            else:
                rates = benchlib.run_rounds("one Apache child (mpm_event, %d threads)"
                                            % 16, ports, variants, pids=child)
            if srv.child_pids() != child or srv.crashes():
                raise RuntimeError("the child changed or crashed during the run: %s -> %s\n%s"
                                   % (child, srv.child_pids(), "\n".join(srv.crashes())))
        except Exception:
            log("apache error.log (tail):\n" + srv.error_log()[-3000:])
            raise
        finally:
            srv.stop()
        if count:
            benchlib.report_instructions(counts, variants, ["stored", "managed"])
            return 0
        benchlib.report(rates, variants, other_ratios=[("stored", "stored")]
                        if with_managed else (), managed=with_managed)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

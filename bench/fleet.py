#!/usr/bin/python3
"""Several servers, one certificate (issue 15): how long after its issuance
a renewed certificate is served by the LAST node of the fleet.  See
fleet.sh.

N nginx nodes (default 3, argv[1] or FLEET_NODES) on 127.0.0.2.. with the
same ports share a real etcd (acme_store, t/integration/etcd.py) and
renew one certificate that pebble issues valid FLEET_VALIDITY seconds
(default 20: renewed at about half of it by the default rule for
short-lived certificates); pebble validates http-01 through the tests'
round-robin balancer (t/integration/fleet.py).  One thread per node makes
full handshakes in a loop and stamps (monotonic time) the first one that
shows each serial; each node's error log is read every millisecond, each
line stamped when it appears.  Per renewal:
  issued      the ordering node's 'certificate "ID" issued: serial S' line
              (written after the record went to the store)
  last node   the latest, over the nodes, first handshake showing S
and the figure is last node - issued.  The first certificate (cold start)
is not counted: FLEET_RENEWALS renewals (default 3) are.

Last line: "fleet: issuance to last node serving = X ms (median of K),
nodes N".  Uses the tests' fixed loopback addresses and ports (run it in
its own network namespace beside other runs, as the tests).
"""

import os
import re
import shutil
import sys
import threading
import time

import benchlib
from benchlib import log

import servers  # noqa: E402
from etcd import Etcd  # noqa: E402
from fleet import Balancer, start_fleet, write_key_file  # noqa: E402
from nginx_server import NginxServer  # noqa: E402
from pebble import HTTP_PORT, Pebble  # noqa: E402
from tlsutil import handshake, wait_for  # noqa: E402

from cryptography import x509  # noqa: E402

NODES = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("FLEET_NODES", "3"))
RENEWALS = int(os.environ.get("FLEET_RENEWALS", "3"))
VALIDITY = int(os.environ.get("FLEET_VALIDITY", "20"))
NAME = "a.example.test"
CERT_ID = NAME + "_ecdsa-256"
ISSUED = re.compile(r'acme: certificate "%s" issued: serial ([0-9A-Fa-f:]+)'
                    % re.escape(CERT_ID))


class Tail:
    """The lines appended to a file, each with the monotonic time at which
    it was first read (as bench/pickup.py)."""

    def __init__(self, path):
        self.path, self.offset, self.rest = path, 0, b""

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        if not data:
            return []
        now = time.monotonic()
        self.offset += len(data)
        parts = (self.rest + data).split(b"\n")
        self.rest = parts.pop()
        return [(now, p.decode(errors="replace")) for p in parts]


class Watcher(threading.Thread):
    """Full handshakes against one node in a loop: the first time each
    serial (int) was seen."""

    def __init__(self, node, root_file):
        super().__init__(daemon=True)
        self.node, self.root_file = node, root_file
        self.first = {}
        self.failures = 0
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            try:
                der = handshake(self.node.https_port, NAME, cafile=self.root_file,
                                host=self.node.addr)
            except Exception:       # noqa: BLE001 - counted
                self.failures += 1
                time.sleep(0.01)
                continue
            t = time.monotonic()
            serial = x509.load_der_x509_certificate(der).serial_number
            self.first.setdefault(serial, t)


def main():
    addrs = ["127.0.0.%d" % (i + 2) for i in range(NODES)]
    log("fleet: %d nginx nodes, certificates valid %d s, %d renewals"
        % (NODES, VALIDITY, RENEWALS))
    issued = []                 # (monotonic time, serial int), renewals only
    with benchlib.session("ngx-acme-fleet-", False) as (work, _):
        pebble = Pebble(work, nonce_reject=0, validity=VALIDITY)
        etcd = Etcd(work)
        made, watchers = [], []
        try:
            pebble.start()
            etcd.start()
            root_file = pebble.write_root(os.path.join(work, "root.pem"))

            def make(name):
                def factory(**kw):
                    kw.pop("name", None)
                    s = NginxServer(os.path.join(work, name), **kw)
                    made.append(s)
                    return s
                return servers.Nginx(factory)

            with Balancer("127.0.0.1", HTTP_PORT, [(a, HTTP_PORT) for a in addrs]):
                nodes = start_fleet(make, pebble, work, etcd.endpoint,
                                    write_key_file(work), addrs)
                tails = [Tail(n.raw.error_log_path) for n in nodes]
                cold = []

                def first_issued():
                    for tail in tails:
                        for t, line in tail.poll():
                            m = ISSUED.search(line)
                            if m:
                                cold.append(int(m.group(1).replace(":", ""), 16))
                    return cold
                wait_for(first_issued, 60, "the first certificate issued", interval=0.01)

                def everywhere():
                    for n in nodes:
                        der = handshake(n.https_port, NAME, cafile=root_file, host=n.addr)
                        if x509.load_der_x509_certificate(der).serial_number != cold[0]:
                            return False
                    return True
                wait_for(everywhere, 30, "every node serving the first certificate")
                watchers = [Watcher(n, root_file) for n in nodes]
                for w in watchers:
                    w.start()

                deadline = time.monotonic() + (RENEWALS + 2) * VALIDITY + 60
                while len(issued) < RENEWALS or not all(
                        s in w.first for w in watchers for _, s in issued):
                    if time.monotonic() > deadline:
                        raise RuntimeError("%d of %d renewals issued and served everywhere"
                                           % (len(issued), RENEWALS))
                    for tail in tails:
                        for t, line in tail.poll():
                            m = ISSUED.search(line)
                            if m and len(issued) < RENEWALS:
                                issued.append((t, int(m.group(1).replace(":", ""), 16)))
                    time.sleep(0.001)
                orders = pebble.orders_created()
        finally:
            for w in watchers:
                w.stop_event.set()
            for w in watchers:
                w.join(10)
            for s in made:
                s.stop()
            etcd.stop()
            pebble.stop()

    figures = []
    for k, (t, serial) in enumerate(issued, 1):
        seen = [w.first[serial] - t for w in watchers]
        figures.append(max(seen))
        log("  renewal %d: serial %x, nodes serving it after %s ms"
            % (k, serial, ", ".join("%.1f" % (x * 1e3) for x in seen)))
    failures = sum(w.failures for w in watchers)
    log("  orders at pebble: %d (1 + %d renewals), failed handshakes: %d"
        % (orders, RENEWALS, failures))
    med = sorted(figures)[len(figures) // 2]
    print("fleet: issuance to last node serving = %.0f ms (median of %d), nodes %d"
          % (med * 1e3, len(figures), NODES))
    sys.stdout.flush()
    return 0 if orders == 1 + RENEWALS and not failures else 1


if __name__ == "__main__":
    shutil.which("etcd") or log("etcd not found (Debian: etcd-server)")
    sys.exit(main())

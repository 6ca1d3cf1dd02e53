"""Short-lived certificates renewed again and again under a handshake load
(issue 13: "a 6-day certificate keeps being renewed on time under load"),
scaled down: pebble issues certificates valid `validity` seconds, the
module renews them by its default rule for short-lived ones (at half the
lifetime, minus a jitter of at most 1/20 of it: acme_sched_renew_at),
while client threads make full handshakes round-robin over every name.
Shared by t/integration/test_shortlived.py (a few certificates) and
bench/shortlived.py (more, longer, with figures).

Each handshake is recorded: name, the leaf served (serial, notBefore,
notAfter) and the wall-clock time it completed.  From those:
  failures    handshakes that failed (refused, reset, chain or name not
              verifying against pebble's root)
  expired     handshakes that got a leaf already expired (time >= notAfter)
  late        per certificate switch (a name's next leaf first seen), how far
              into its predecessor's lifetime that was, as a fraction
              (0.5 = at the half-life); "on time" is < on_time
"""

import threading
import time
from datetime import timezone

from cryptography import x509

from tlsutil import handshake, wait_acme_cert, wait_for


def _utc(naive):
    """cryptography's naive UTC datetime as seconds since the epoch."""
    return naive.replace(tzinfo=timezone.utc).timestamp()


class LoadClient(threading.Thread):
    """Full handshakes (no session reuse, chain and name verified), the
    names round-robin, until stopped (bounded by max_seconds); host: the
    address connected to (a fleet's node, test_fleet_scenarios.py)."""

    def __init__(self, port, root_file, names, offset=0, max_seconds=600,
                 host="127.0.0.1"):
        super().__init__(daemon=True)
        self.port, self.root_file, self.names = port, root_file, list(names)
        self.host = host
        self.i = offset
        self.deadline = time.monotonic() + max_seconds
        self.stop_event = threading.Event()
        self.seen = []          # (name, serial, not_before, not_after, t)
        self.failures = []      # (name, repr(error), t)

    def run(self):
        leaves = {}             # DER -> (serial, not_before, not_after)
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            name = self.names[self.i % len(self.names)]
            self.i += 1
            try:
                der = handshake(self.port, name, cafile=self.root_file, host=self.host)
                t = time.time()
                leaf = leaves.get(der)
                if leaf is None:
                    c = x509.load_der_x509_certificate(der)
                    leaf = (c.serial_number, _utc(c.not_valid_before),
                            _utc(c.not_valid_after))
                    leaves[der] = leaf
                self.seen.append((name,) + leaf + (t,))
            except Exception as e:      # noqa: BLE001 - every failure counts
                self.failures.append((name, repr(e), time.time()))


def analyse(clients, names, on_time):
    """The figures of the clients' records (see the module's text)."""
    seen = [s for c in clients for s in c.seen]
    failures = [f for c in clients for f in c.failures]
    expired = [s for s in seen if s[4] >= s[3]]
    first = {}                  # (name, serial) -> (first seen, nb, na)
    for name, serial, nb, na, t in seen:
        k = (name, serial)
        if k not in first or t < first[k][0]:
            first[k] = (t, nb, na)
    switches, late = {}, []
    for name in names:
        leaves = sorted((v for (n, _), v in first.items() if n == name),
                        key=lambda v: v[1])     # by notBefore
        switches[name] = len(leaves) - 1
        for prev, nxt in zip(leaves, leaves[1:]):
            life = prev[2] - prev[1]
            frac = (nxt[0] - prev[1]) / life if life > 0 else 1.0
            late.append((name, frac))
    return {
        "handshakes": len(seen) + len(failures),
        "failures": failures,
        "expired": expired,
        "switches": switches,
        "late": late,
        "worst": max((f for _, f in late), default=0.0),
        "not_on_time": [(n, f) for n, f in late if f >= on_time],
    }


def run(server, pebble, root_file, state_dir, names, renewals, clients=3,
        timeout=120, issue_timeout=120, on_time=0.75, port=None, issuer=None):
    """Starts server with one managed certificate per name against pebble
    (its validity decides the lifetime), waits until each is served, then
    runs `clients` LoadClients until every name was seen switching
    `renewals` times (bounded by timeout).  issuer: options of the issuer
    (servers.py; default none: the module's own renewal rule).  Returns analyse()'s figures plus
    "status": the status document at the end, "elapsed": seconds of load."""
    port = port or server.https_port
    server.write_certs(pebble, state_dir, [([n], "") for n in names], issuer=issuer)
    server.start()
    for n in names:
        wait_acme_cert(port, n, root_file, issue_timeout, proc_alive=server.running)
    server.wait_installed()

    load = [LoadClient(port, root_file, names, offset=i * len(names) // clients,
                       max_seconds=timeout + 30) for i in range(clients)]
    t0 = time.monotonic()
    for c in load:
        c.start()
    try:
        def enough():
            if not server.running():
                raise AssertionError("the server died")
            sw = analyse(load, names, on_time)["switches"]
            return all(v >= renewals for v in sw.values())
        wait_for(enough, timeout, "%d renewals of each certificate served" % renewals,
                 interval=1.0)
    finally:
        for c in load:
            c.stop_event.set()
        for c in load:
            c.join(30)
    out = analyse(load, names, on_time)
    out["elapsed"] = time.monotonic() - t0
    out["status"] = server.status()
    return out

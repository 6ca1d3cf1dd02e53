"""nginx: renewal swaps the served certificate in every worker without a
reload, and full handshakes during the swap never fail."""

import os
import threading
import time

from nginx_server import HTTPS_PORT, get_status, start_managed, status_cert
from tlsutil import handshake, same_serial, sans, served_cert, wait_acme_cert, wait_for
from cryptography import x509

VALIDITY = 90          # pebble certificateValidityPeriod, seconds
# renew when 66% of the lifetime remains: ~30 s after issuance
RENEW = "renew_before_expiry 66%;"


class Hammer(threading.Thread):
    """Full TLS handshakes (new connection, no session reuse, chain and name
    verified against pebble's root) in a loop until stopped; bounded by
    max_seconds whatever happens."""

    def __init__(self, root_file, sni="a.example.test", max_seconds=200):
        super().__init__(daemon=True)
        self.root_file = root_file
        self.sni = sni
        self.deadline = time.monotonic() + max_seconds
        self.stop_event = threading.Event()
        self.ok = 0
        self.failures = []
        self.serials = {}           # serial -> handshakes that saw it
        self.lock = threading.Lock()

    def run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            try:
                der = handshake(HTTPS_PORT, self.sni, cafile=self.root_file)
                serial = x509.load_der_x509_certificate(der).serial_number
                with self.lock:
                    self.ok += 1
                    self.serials[serial] = self.serials.get(serial, 0) + 1
            except Exception as e:
                with self.lock:
                    self.failures.append(repr(e))

    def count_after(self, serial):
        with self.lock:
            return self.serials.get(serial, 0)


def test_renewal_hot_swap_without_reload(nginx_factory, pebble_factory, workdir, state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    srv = start_managed(nginx_factory(), p, state_dir, issuer_extra=RENEW)

    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60, proc_alive=srv.running)
    workers = srv.worker_pids()
    master = srv.master_pid
    log_before = len(srv.error_log())

    hammers = [Hammer(root), Hammer(root, sni="b.example.test")]
    for h in hammers:
        h.start()
    try:
        # the renewed certificate reaches the clients (no reload, no restart)
        new = wait_for(lambda: (lambda c: c if c.serial_number != first.serial_number
                                else None)(x509.load_der_x509_certificate(
                                    handshake(HTTPS_PORT, "a.example.test", cafile=root))),
                       VALIDITY + 60, "a renewed certificate being served")
        # keep hammering until both hammers saw the new serial a number of
        # times (count-based, bounded by the hammers' own deadline)
        wait_for(lambda: all(h.count_after(new.serial_number) >= 50 or not h.is_alive()
                             for h in hammers), 60, "hammers seeing the new certificate")
    finally:
        for h in hammers:
            h.stop_event.set()
        for h in hammers:
            h.join(30)

    for h in hammers:
        print("hammer %s: %d handshakes, %d failed, serials seen %s" % (
            h.sni, h.ok + len(h.failures), len(h.failures),
            {"%x" % k: v for k, v in h.serials.items()}))
    for h in hammers:
        assert h.failures == [], "%d failed handshakes of %d, e.g. %s" % (
            len(h.failures), h.ok + len(h.failures), h.failures[:3])
        assert h.count_after(new.serial_number) >= 1
    assert sans(new) == ["a.example.test", "b.example.test"]

    # same master, same workers, no reconfiguration
    assert srv.master_pid == master
    assert srv.worker_pids() == workers
    log = srv.error_log()[log_before:]
    assert "reconfiguring" not in log
    assert "exited on signal" not in log

    # every worker serves the new one (each has its own SSL_CTX copy): many
    # fresh connections spread over the workers
    for _ in range(40):
        der = handshake(HTTPS_PORT, "a.example.test", cafile=root)
        assert x509.load_der_x509_certificate(der).serial_number != first.serial_number

    wait_for(lambda: same_serial(status_cert(get_status())["serial"],
                                 served_cert(HTTPS_PORT, "a.example.test").serial_number),
             20, "status serial == served serial")
    c = status_cert(get_status())
    assert c["consecutive_failures"] == 0
    assert not srv.alerts(), srv.alerts()

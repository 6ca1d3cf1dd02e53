"""nginx: renewal swaps the served certificate in every worker without a
reload, and full handshakes during the swap never fail."""

import os

from nginx_server import HTTPS_PORT, get_status, start_managed, status_cert
from tlsutil import (handshake, hammer_through_renewal, same_serial, sans, served_cert,
                     wait_acme_cert, wait_for)
from cryptography import x509

VALIDITY = 90          # pebble certificateValidityPeriod, seconds
# renew when 66% of the lifetime remains: ~30 s after issuance
RENEW = "renew_before_expiry 66%;"


def test_renewal_hot_swap_without_reload(nginx_factory, pebble_factory, workdir, state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    srv = start_managed(nginx_factory(), p, state_dir, issuer_extra=RENEW)

    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60, proc_alive=srv.running)
    workers = srv.worker_pids()
    master = srv.master_pid
    log_before = len(srv.error_log())

    # the renewed certificate reaches the clients (no reload, no restart)
    new, hammers = hammer_through_renewal(HTTPS_PORT, root, first.serial_number,
                                          VALIDITY + 60, 50)
    for h in hammers:
        assert h.failures == [], "%d failed handshakes of %d, e.g. %s" % (
            len(h.failures), h.ok + len(h.failures), h.failures[:3])
        assert h.count(new.serial_number) >= 1
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

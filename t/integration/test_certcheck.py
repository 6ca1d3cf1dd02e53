"""nginx and Apache: a certificate the CA hands out that does not match the
order (another key, a missing name) is rejected: the previous one stays
stored and served, the attempt counts as a failure with a backoff (no order
storm), also after a restart.  One with an extra name is accepted and not
ordered again and again.  The CA is real pebble behind ca_proxy.py, which
rewrites only the certificate downloads (scenario in ca_proxy.py)."""

import os

from ca_proxy import (MODES, NAMES, CaProxy, cert_id, check_renewals,
                      wait_renewal_attempts)
from serverlib import status_cert
from servers import HTTPS_PORT
from tlsutil import wait_acme_cert

VALIDITY = 60           # pebble certificateValidityPeriod, seconds
# due ~15 s after issuance (jitter up to 3 s earlier); the renewal of "e"'s
# new certificate is as far off, after the restart that orders it again
RENEW = {"renew_before_expiry": "75%"}


def test_wrong_certificate_keeps_the_previous_one(server, pebble_factory, workdir, state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(p).start()
    try:
        server.start_managed(proxy, state_dir, issuer=RENEW,
                             more=[server.vhost(["c.example.test", "d.example.test"]),
                                   server.vhost(["e.example.test"])])
        first = {n: wait_acme_cert(HTTPS_PORT, n, root, 60, proc_alive=server.running)
                 for n in NAMES}
        proxy.modes.update(MODES)

        doc = wait_renewal_attempts(server.status, HTTPS_PORT,
                                    first["e.example.test"].serial_number, VALIDITY)
        # 3 first orders, 3 renewals
        check_renewals(doc, proxy, first, HTTPS_PORT, root, state_dir, 6)
        for c in doc["certificates"]:
            assert c["state"] == "valid", c
        log = server.error_log()
        assert log.count("rejected the certificate at https://127.0.0.1:%d/certZ/"
                         % proxy.port) == 2, log[-3000:]
        assert not server.problems(), server.problems()

        # a restart serves the stored ones and keeps the backoff; "e" is
        # ordered once more (its names differ from the configuration)
        e_serial = status_cert(doc, cert_id("e.example.test"))["serial"]
        server.stop()
        server.start()
        doc = wait_renewal_attempts(server.status, HTTPS_PORT, e_serial, 30)
        check_renewals(doc, proxy, first, HTTPS_PORT, root, state_dir, 7)
    finally:
        proxy.stop()

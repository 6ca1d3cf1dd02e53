"""Apache (mod_acme_auto): a certificate the CA hands out that does not match
the order (another key, a missing name) is rejected: the previous one stays
stored and served, the attempt counts as a failure with a backoff (no order
storm), also after a restart.  One with an extra name is accepted and not
ordered again and again.  The CA is real pebble behind ca_proxy.py, which
rewrites only the certificate downloads (scenario in ca_proxy.py)."""

import os

from apache_server import (HTTPS_PORT, apache_factory,  # noqa: F401 (fixture)
                           get_status, managed_conf)
from ca_proxy import (MODES, NAMES, CaProxy, cert_id, check_renewals,
                      wait_renewal_attempts)
from serverlib import status_cert
from tlsutil import wait_acme_cert

VALIDITY = 90           # pebble certificateValidityPeriod, seconds
RENEW = "    AcmeRenewBeforeExpiry 66%"     # due ~30 s after issuance

MORE = """
<VirtualHost 127.0.0.1:%(https)d>
    ServerName c.example.test
    ServerAlias d.example.test
    SSLEngine on
    AcmeCertificate pebble
</VirtualHost>
<VirtualHost 127.0.0.1:%(https)d>
    ServerName e.example.test
    SSLEngine on
    AcmeCertificate pebble
</VirtualHost>
""" % {"https": HTTPS_PORT}


def test_wrong_certificate_keeps_the_previous_one(apache_factory, pebble_factory, workdir,
                                                  state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(p).start()
    try:
        srv = apache_factory()
        srv.write_conf(managed_conf(proxy, state_dir, issuer_extra=RENEW) + MORE)
        srv.start()
        first = {n: wait_acme_cert(HTTPS_PORT, n, root, 60, proc_alive=srv.running)
                 for n in NAMES}
        proxy.modes.update(MODES)

        doc = wait_renewal_attempts(get_status, HTTPS_PORT,
                                    first["e.example.test"].serial_number, VALIDITY)
        # 3 first orders, 3 renewals
        check_renewals(doc, proxy, first, HTTPS_PORT, root, state_dir, 6)
        for c in doc["certificates"]:
            assert c["state"] == "valid", c
        log = srv.error_log()
        assert log.count("rejected the certificate at https://127.0.0.1:%d/certZ/"
                         % proxy.port) == 2, log[-3000:]
        assert not srv.crashes(), srv.crashes()

        # a restart serves the stored ones and keeps the backoff; "e" is
        # ordered once more (its names differ from the configuration)
        e_serial = status_cert(doc, cert_id("e.example.test"))["serial"]
        srv.stop()
        srv.start()
        doc = wait_renewal_attempts(get_status, HTTPS_PORT, e_serial, 30)
        check_renewals(doc, proxy, first, HTTPS_PORT, root, state_dir, 7)
    finally:
        proxy.stop()

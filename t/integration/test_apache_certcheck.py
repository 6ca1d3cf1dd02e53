"""Apache (mod_acme_auto): a certificate the CA hands out that does not match
the order (another key, a missing name) is rejected: the previous one stays
stored and served, the attempt counts as a failure with a backoff (no order
storm), also after a restart.  The CA is real pebble behind ca_proxy.py,
which rewrites only the certificate downloads."""

import os

from apache_server import (HTTPS_PORT, apache_factory,  # noqa: F401 (fixture)
                           get_status, managed_conf)
from ca_proxy import BAD_MODES, CERT_IDS, CaProxy, check_kept, wait_both_rejected
from serverlib import status_cert
from tlsutil import parse_rfc3339, wait_acme_cert, wait_for

VALIDITY = 90           # pebble certificateValidityPeriod, seconds
RENEW = "    AcmeRenewBeforeExpiry 66%"     # due ~30 s after issuance

SECOND = """
<VirtualHost 127.0.0.1:%d>
    ServerName c.example.test
    ServerAlias d.example.test
    SSLEngine on
    AcmeCertificate pebble
</VirtualHost>
""" % HTTPS_PORT


def test_wrong_certificate_keeps_the_previous_one(apache_factory, pebble_factory, workdir,
                                                  state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(p).start()
    try:
        srv = apache_factory()
        srv.write_conf(managed_conf(proxy, state_dir, issuer_extra=RENEW) + SECOND)
        srv.start()
        first = {n: wait_acme_cert(HTTPS_PORT, n, root, 60, proc_alive=srv.running)
                 for n in CERT_IDS}
        proxy.modes.update(BAD_MODES)

        doc = wait_both_rejected(get_status, VALIDITY)
        check_kept(doc, proxy, first, HTTPS_PORT, root, state_dir)
        for c in doc["certificates"]:
            assert c["state"] == "valid", c
        log = srv.error_log()
        assert log.count("rejected the certificate at https://127.0.0.1:%d/certZ/"
                         % proxy.port) == 2, log[-3000:]
        assert not srv.crashes(), srv.crashes()

        # a restart serves the stored ones and keeps the backoff
        srv.stop()
        srv.start()

        def scheduled():
            d = get_status()
            now = parse_rfc3339(d["generated_at"])
            ok = all(status_cert(d, i)["next_renewal"]
                     and parse_rfc3339(status_cert(d, i)["next_renewal"]) > now
                     for i in CERT_IDS.values())
            return d if ok else None
        doc = wait_for(scheduled, 20, "the backoff in the status after the restart")
        check_kept(doc, proxy, first, HTTPS_PORT, root, state_dir)
    finally:
        proxy.stop()

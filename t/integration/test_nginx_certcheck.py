"""nginx: a certificate the CA hands out that does not match the order (another
key, a missing name) is rejected: the previous one stays stored and served,
the attempt counts as a failure with a backoff (no order storm), also after
a restart.  The CA is real pebble behind ca_proxy.py, which rewrites only
the certificate downloads."""

import os

from ca_proxy import BAD_MODES, CERT_IDS, CaProxy, check_kept, wait_both_rejected
from nginx_server import HTTP_PORT, HTTPS_PORT, get_status, start_managed
from serverlib import status_cert
from tlsutil import parse_rfc3339, wait_acme_cert, wait_for

VALIDITY = 90           # pebble certificateValidityPeriod, seconds
RENEW = "renew_before_expiry 66%;"      # due ~30 s after issuance

SECOND = """
    server {
        listen 127.0.0.1:%d ssl;
        server_name c.example.test d.example.test;
        acme_certificate pebble;
    }
""" % HTTPS_PORT


def test_wrong_certificate_keeps_the_previous_one(nginx_factory, pebble_factory, workdir,
                                                  state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(p).start()
    try:
        srv = start_managed(nginx_factory(), proxy, state_dir, issuer_extra=RENEW,
                            http_extra=SECOND)
        first = {n: wait_acme_cert(HTTPS_PORT, n, root, 60, proc_alive=srv.running)
                 for n in CERT_IDS}
        proxy.modes.update(BAD_MODES)

        doc = wait_both_rejected(get_status, VALIDITY)
        check_kept(doc, proxy, first, HTTPS_PORT, root, state_dir)
        log = srv.error_log()
        assert log.count("rejected the certificate at https://127.0.0.1:%d/certZ/"
                         % proxy.port) == 2, log[-3000:]
        assert not srv.alerts(), srv.alerts()

        # a restart serves the stored ones and keeps the backoff
        srv.stop()
        srv.start(ports=(HTTPS_PORT, HTTP_PORT))

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

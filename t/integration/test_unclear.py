"""nginx and Apache: an answer whose effect at the CA is unknown (a 503, a
connection closed after the request went through) does not throw the order
away (issue 16): the engine sends newOrder again, reads the order back and
goes on from its state, or downloads again.  Each certificate comes from
its first order, no order fails.  The CA is real pebble behind
ca_proxy.py's faults, each used once, in one server start."""

import os

from ca_proxy import CaProxy, cert_id
from servers import HTTPS_PORT
from tlsutil import wait_acme_cert

# two certificates ordered at once: a.example.test + b.example.test (two
# authorizations) and c.example.test; one finalize is done by pebble but
# answered 503, the other answered 503 without reaching pebble
FAULTS = {
    "/order-plz": ["503-no-pass"],
    "/chalZ/": ["pass-then-close"],
    "/finalize-order/": ["pass-then-503", "503-no-pass"],
    "/certZ/": ["503-no-pass"],
}
CERTS = ("a.example.test", "c.example.test")


def test_unclear_answers_keep_the_order(server, pebble_factory, workdir, state_dir):
    p = pebble_factory(nonce_reject=0)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(p)
    proxy.faults.update({k: list(v) for k, v in FAULTS.items()})
    proxy.start()
    try:
        # a failed order would be retried only after an hour: no second
        # order can hide a failure
        server.start_managed(proxy, state_dir, issuer={"retry_delay": "3600s"},
                             more=[server.vhost(["c.example.test"])])
        for name in CERTS:
            wait_acme_cert(HTTPS_PORT, name, root, 60, proc_alive=server.running)

        # every fault was answered
        assert sorted(m for _, m in proxy.faulted) == sorted(
            m for modes in FAULTS.values() for m in modes), proxy.faulted
        assert all(not modes for modes in proxy.faults.values()), proxy.faults

        # one order per certificate at pebble; both finalize requests that
        # reached it were needed (one answered 503 after pebble did it, one
        # sent again after a 503 that never reached it), the 503 to newOrder
        # did not reach pebble either
        assert p.orders_created() == len(CERTS), proxy.requests
        assert p.count_requests("/finalize-order/") == len(CERTS), proxy.requests
        # pebble issued each certificate once: read back, not finalized twice
        assert proxy.count("/finalize-order/") == len(CERTS) + 1, proxy.requests
        assert proxy.count("/my-order/") >= 2, proxy.requests

        for name in CERTS:
            c = server.status_cert(cert_id(name))
            assert c["state"] == "valid", c
            assert c["consecutive_failures"] == 0 and c["last_error"] is None, c
        assert not server.problems(), server.problems()

        # each unclear answer is a warning naming the step and what follows
        log = server.error_log()
        for line in ("new-order: HTTP 503, the CA may have done it; sending it again",
                     "finalize: HTTP 503, the CA may have done it; reading the order back",
                     "certificate: HTTP 503, the CA may have done it; downloading it again",
                     "the CA may have done it; reading the order back"):
            assert line in log, line
    finally:
        proxy.stop()

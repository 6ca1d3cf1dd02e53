"""nginx and Apache, issue 9: the bounded order pipeline (acme_job_pipeline).
Four certificates due at once on a fresh store, with max_orders 1 /
AcmeMaxOrders 1: all are issued, one order after the other, never two
orders of the issuer in flight at once as the CA sees it (our proxy in
front of pebble: a new-order request comes only after the previous
order's certificate was downloaded).  A rateLimited answer with
Retry-After holds every order of the issuer back until then."""

from ca_proxy import RATE_LIMITED_AFTER, CaProxy
from tlsutil import wait_for

ISSUE_TIMEOUT = 90
N = 4


def _orders_in_flight(requests):
    """The most orders in flight at once and the orders started, by the
    proxy's request log: new-order opens one, a certificate download
    closes one."""
    busy = most = started = 0
    for method, path in requests:
        if path.startswith("/order-plz"):
            busy += 1
            started += 1
            most = max(most, busy)
        elif path.startswith("/certZ/"):
            busy -= 1
    return most, started


def test_max_orders_one_at_a_time(server, pebble_factory, state_dir):
    # no badNonce retries: each new-order request is one order
    p = pebble_factory(nonce_reject=0)
    proxy = CaProxy(p).start()
    try:
        server.write_certs(proxy, state_dir,
                           [(["p%d.example.test" % i], "") for i in range(1, N + 1)],
                           issuer={"max_orders": "1"})
        rc, out = server.test_config()
        assert rc == 0, out
        server.start()
        wait_for(lambda: (lambda c: len(c) == N and all(x["state"] == "valid" for x in c))(
            server.status()["certificates"]), ISSUE_TIMEOUT,
            "%d certificates valid" % N)
        with proxy.lock:
            requests = list(proxy.requests)
        most, started = _orders_in_flight(requests)
        assert started == N, requests
        assert most == 1, [r for r in requests
                           if r[1].startswith(("/order-plz", "/certZ/"))]
        assert not server.problems(), server.problems()
    finally:
        proxy.stop()


def test_max_orders_range(server, pebble_factory, state_dir):
    """max_orders / AcmeMaxOrders takes 1 to 64."""
    p = pebble_factory(start=False)
    for bad in ("0", "65", "x"):
        server.write_managed(p, state_dir, issuer={"max_orders": bad})
        rc, out = server.test_config()
        assert rc != 0 and ("max_orders" in out or "AcmeMaxOrders" in out), (bad, out)
    server.write_managed(p, state_dir, issuer={"max_orders": "64"})
    rc, out = server.test_config()
    assert rc == 0, out


RATE_LIMITED_LOG = {"nginx": 'acme_issuer "pebble": the CA asks to wait',
                    "apache": "AcmeIssuer pebble: the CA asks to wait"}


def test_rate_limited_pauses_the_issuer(server, pebble_factory, state_dir):
    """The first new-order gets 429 rateLimited with Retry-After: that
    certificate fails, and the other one (max_orders 1, so it waited for the
    first) starts no order before the Retry-After has passed; both are
    issued after it.  Retry-After is whole seconds from the server's clock,
    so the next new-order comes at least RATE_LIMITED_AFTER - 1 s later."""
    p = pebble_factory(nonce_reject=0)
    proxy = CaProxy(p).start()
    proxy.faults["/order-plz"] = ["429-rate-limited"]
    try:
        server.write_certs(proxy, state_dir, [(["p1.example.test"], ""),
                                              (["p2.example.test"], "")],
                           issuer={"max_orders": "1", "retry_delay": "1s"})
        server.start()
        wait_for(lambda: (lambda c: len(c) == 2 and all(x["state"] == "valid" for x in c))(
            server.status()["certificates"]), ISSUE_TIMEOUT, "2 certificates valid")
        with proxy.lock:
            orders = [t for (m, path), t in zip(proxy.requests, proxy.times)
                      if path.startswith("/order-plz")]
        assert len(proxy.faulted) == 1 and len(orders) == 3, (proxy.faulted, orders)
        assert orders[1] - orders[0] >= RATE_LIMITED_AFTER - 1, orders
        assert RATE_LIMITED_LOG[server.kind] in server.error_log()
    finally:
        proxy.stop()

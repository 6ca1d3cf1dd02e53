"""Both servers: the requests of an order share their connection to the CA
(HTTP/1.1 keep-alive) instead of one TLS connection each.  The CA is real
pebble behind ca_proxy.py (HTTP/1.1, Content-Length on every answer), which
counts the connections it accepts and the requests it forwards."""

import os

from ca_proxy import CaProxy
from servers import HTTPS_PORT
from tlsutil import wait_acme_cert


def test_order_reuses_connections(server, pebble, workdir, state_dir):
    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(pebble).start()
    try:
        server.start_managed(proxy, state_dir)
        wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60,
                       proc_alive=server.running)
    finally:
        proxy.stop()

    with proxy.lock:
        requests, connections = list(proxy.requests), proxy.connections

    # a whole order went through the proxy: directory, nonce, account,
    # order, authorization, challenge, polls, finalize, download
    assert proxy.count("/order-plz") >= 1 and proxy.count("/certZ/") >= 1, requests
    assert len(requests) >= 8, requests
    # one connection per request before keep-alive; a reconnect after the
    # idle bound or a closed connection is allowed, most requests reuse one
    assert connections >= 1
    assert connections < len(requests) / 2, (connections, requests)
    assert not server.problems(), server.problems()

"""Several servers, one certificate (issue 15): three nginx nodes, each on
its own 127.0.0.x address with the same ports, share a real etcd
(acme_store); pebble validates http-01 through a round-robin TCP balancer
of the test's own (fleet.py) on pebble's http-01 port, where pebble's DNS
sends every name.

Cold start of all three at once: exactly one order for the certificate, all
nodes serve the same one (one installed it from the store), a validation
request reached a node that did not publish the token and was answered
200, and etcd holds no plaintext private key; etcd stopped: every node
keeps serving and reports the store unreachable until it is back."""

import os


import servers
from fleet import nginx_nodes, served_serials, Balancer, start_fleet, write_key_file
from pebble import HTTP_PORT, TLS_PORT
from tlsutil import http_get, wait_for

ADDRS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
CERT_ID = "a.example.test_ecdsa-256"
TIMEOUT = 60


def test_fleet_cold_start_one_order(nginx_factory, pebble_factory, workdir, etcd):
    pebble = pebble_factory(nonce_reject=0)
    root_file = pebble.write_root(os.path.join(workdir, "root.pem"))
    key_file = write_key_file(workdir)

    with Balancer("127.0.0.1", HTTP_PORT, [(a, HTTP_PORT) for a in ADDRS]) as lb:
        nodes = start_fleet(nginx_nodes(nginx_factory), pebble, workdir,
                            etcd.endpoint, key_file, ADDRS)

        def same_everywhere():
            s = served_serials(nodes, root_file)
            return s if None not in s.values() and len(set(s.values())) == 1 else None

        serials = wait_for(same_everywhere, TIMEOUT, "every node serving one certificate")

        # exactly one order (pebble's log), by exactly one node
        assert pebble.orders_created() == 1, pebble.log()[-3000:]
        assert pebble.count_requests("/finalize-order/") == 1
        issued = [n for n in nodes if n.issued_count(CERT_ID) == 1]
        assert len(issued) == 1, [n.issued_count(CERT_ID) for n in nodes]
        orderer = issued[0]
        others = [n for n in nodes if n is not orderer]
        for n in others:
            assert n.issued_count(CERT_ID) == 0
            wait_for(lambda: "installed from the shared store (ordered by node %s)"
                     % orderer.node_name in n.error_log(), 10,
                     "%s installing the store's certificate" % n.node_name)

        # a validation request reached a node that had not published the
        # token, and it answered (mirrored from the store)
        chals = lb.challenge_records()
        assert chals, lb.records
        assert all(r.status == 200 for r in chals), chals
        assert [r for r in chals if r.backend != orderer.addr], (orderer.addr, chals)

        for n in others:
            c = [c for c in n.status()["certificates"] if c["id"] == CERT_ID][0]
            assert c["fleet"] == {"action": "install", "holder": None}, c["fleet"]

        # the status: the store reachable, every node live, the certificate's
        # decision
        doc = orderer.status()
        assert doc["store"]["reachable"] is True, doc["store"]
        assert doc["store"]["node"] == orderer.node_name
        assert doc["store"]["nodes"] == 3, doc["store"]
        c = [c for c in doc["certificates"] if c["id"] == CERT_ID][0]
        assert c["fleet"]["action"] in ("order", "idle"), c["fleet"]
        assert c["serial"].lower().lstrip("0") == list(serials.values())[0].lower().lstrip("0")

    # the store holds the record, and no private key in clear anywhere
    dump = etcd.etcdctl("get", "--prefix", "/acme/")
    assert "/acme/certs/" + CERT_ID in dump
    assert "PRIVATE KEY" not in dump

    # etcd stopped: every node keeps serving, says so (error log once,
    # status, Prometheus), and says when it is back
    etcd.stop()
    for n in nodes:
        wait_for(lambda: n.status()["store"]["reachable"] is False, 20,
                 "%s seeing the store unreachable" % n.node_name)
        assert n.error_log().count("acme_store: the shared store is unreachable") == 1
        _, _, prom = http_get("http://%s:%d/acme-status?format=prometheus"
                              % (n.addr, n.http_port), host="a.example.test")
        assert b"\nacme_store_reachable 0\n" in prom, prom[-500:]
    assert served_serials(nodes, root_file) == serials
    etcd.start()
    for n in nodes:
        wait_for(lambda: n.status()["store"]["reachable"] is True, 20,
                 "%s seeing the store again" % n.node_name)
        assert "the shared store is reachable again" in n.error_log()
    for n in nodes:
        assert not n.problems(), n.problems()


def test_fleet_config_errors(nginx_factory, pebble_factory, workdir):
    """acme_store's words and files are checked by nginx -t, naming the
    directive and its line."""
    pebble = pebble_factory(start=False)
    srv = servers.Nginx(nginx_factory)
    good = write_key_file(workdir)
    cases = [
        ("acme_store etcd http://127.0.0.1:2379 prefix=/acme/ key_file=%s node=x;"
         % os.path.join(workdir, "missing.key"), "missing.key"),
        ("acme_store redis http://127.0.0.1:2379 prefix=/acme/ key_file=%s;" % good,
         "unknown backend"),
        ("acme_store etcd http://127.0.0.1:2379 prefix=/acme/;", "key_file"),
        # etcd's port is not the scheme's: a port is required, and valid
        ("acme_store etcd http://127.0.0.1 prefix=/acme/ key_file=%s;" % good,
         '"http://127.0.0.1" is not an etcd endpoint'),
        ("acme_store etcd http://127.0.0.1:99999 prefix=/acme/ key_file=%s;" % good,
         "a port from 1 to 65535"),
        # the CA file of an https:// etcd is checked now, not at the first round
        ("acme_store etcd https://127.0.0.1:2379 prefix=/acme/ key_file=%s "
         "ssl_trusted_certificate=%s;" % (good, os.path.join(workdir, "none.pem")),
         'ssl_trusted_certificate "%s"' % os.path.join(workdir, "none.pem")),
    ]
    for line, want in cases:
        srv.write_managed(pebble, os.path.join(workdir, "state"), more=[line])
        rc, out = srv.test_config()
        assert rc != 0, out
        assert "acme_store: " in out and want in out, out
        assert "nginx.conf:%d" % srv.conf_line("acme_store") in out, out

    srv.write_managed(pebble, os.path.join(workdir, "state"),
                      more=["acme_store etcd http://127.0.0.1:2379 prefix=/acme/ "
                            "key_file=%s node=x;" % good])
    rc, out = srv.test_config()
    assert rc == 0, out


def test_fleet_tls_alpn_any_node_answers(nginx_factory, pebble_factory, workdir, etcd):
    """tls-alpn-01 through the balancer on pebble's tlsPort: the answers
    (challenge certificates) are mirrored too; one order, every node serves
    it."""
    pebble = pebble_factory(nonce_reject=0)
    root_file = pebble.write_root(os.path.join(workdir, "root.pem"))
    key_file = write_key_file(workdir)

    with Balancer("127.0.0.1", TLS_PORT, [(a, TLS_PORT) for a in ADDRS]) as lb:
        nodes = start_fleet(nginx_nodes(nginx_factory), pebble, workdir, etcd.endpoint,
                            key_file, ADDRS, issuer={"challenge": "tls-alpn-01"},
                            setup=lambda s: s.use_tls_alpn())

        def same_everywhere():
            s = served_serials(nodes, root_file)
            return s if None not in s.values() and len(set(s.values())) == 1 else None

        wait_for(same_everywhere, TIMEOUT, "every node serving one certificate")
        assert pebble.orders_created() == 1
        orderer, = [n for n in nodes if n.issued_count(CERT_ID) == 1]
        # the CA's validation connections reached the other nodes too
        assert {r.backend for r in lb.records} - {orderer.addr}, lb.records
        for n in nodes:
            assert "order failed" not in n.error_log()
            assert not n.problems(), n.problems()


def test_fleet_store_down_orders_alone_publishes_later(nginx_factory, pebble_factory,
                                                       workdir, etcd):
    """A node without a certificate (in its emergency window) starting while
    etcd is down orders alone; its certificate goes to the store once etcd
    is back, under the store's key name, sealed."""
    pebble = pebble_factory(nonce_reject=0)
    root_file = pebble.write_root(os.path.join(workdir, "root.pem"))
    key_file = write_key_file(workdir)
    etcd.stop()

    with Balancer("127.0.0.1", HTTP_PORT, [(ADDRS[0], HTTP_PORT)]):
        node, = start_fleet(nginx_nodes(nginx_factory), pebble, workdir,
                            etcd.endpoint, key_file, ADDRS[:1])
        serial = wait_for(lambda: served_serials([node], root_file)["n1"], TIMEOUT,
                          "n1 serving a certificate ordered alone")
        log = node.error_log()
        assert log.count("acme_store: the shared store is unreachable") == 1, log
        assert "ordering without the store's lock" in log, log
        # why: it has none (not "in the last tenth of its lifetime")
        assert "unreachable and no certificate is served yet" in log, log
        assert node.status()["store"]["reachable"] is False

        etcd.start()
        wait_for(lambda: "published to the shared store" in node.error_log(), 20,
                 "the certificate published once etcd is back")
        dump = etcd.etcdctl("get", "--prefix", "/acme/certs/")
        assert "/acme/certs/" + CERT_ID in dump and "PRIVATE KEY" not in dump
        assert pebble.orders_created() == 1
        assert served_serials([node], root_file)["n1"] == serial
        c = [c for c in node.status()["certificates"] if c["id"] == CERT_ID][0]
        assert c["fleet"]["action"] == "publish", c["fleet"]

        # a reload: the new workers join the fleet under the same name, nothing
        # is ordered
        node.reload()
        wait_for(lambda: (node.status()["store"] or {}).get("reachable") is True, 20,
                 "the new workers' node reaching the store")
        assert node.status()["store"]["node"] == "n1"
        assert served_serials([node], root_file)["n1"] == serial
        assert pebble.orders_created() == 1
        assert not node.problems(), node.problems()

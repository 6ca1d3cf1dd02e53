"""Several servers, one certificate (issue 15) with Apache (AcmeStore): an
Apache node and three nginx nodes (the tls-alpn-01 case: one of each), each
on its own 127.0.0.x address, share a real etcd; pebble validates http-01 through the round-robin TCP balancer of
fleet.py in front of them (pebble's DNS answers every name with 127.0.0.1,
where the balancer listens).  One order for the fleet, every node serves
its certificate, and nodes that did not order answer the CA's validation
from the challenges it mirrored out of the store.  Also: etcd stopped and
back, etcd down at a cold start (the node orders alone and publishes later),
and AcmeStore's configuration errors."""

import os
import re
import shutil


import servers
from fleet import Balancer, write_key_file
from pebble import HTTP_PORT, TLS_PORT
from tlsutil import served_cert, wait_for

NAMES = ("a.example.test", "b.example.test")
CERT_ID = "a.example.test_ecdsa-256"


def node(server, name, addr, pebble, workdir, etcd, key_file, issuer=None):
    """server (servers.Apache / Nginx) configured as fleet node name on
    addr, with its own local store; not started."""
    server.node_name = name
    server.use_address(addr)
    state = os.path.join(workdir, "state-" + name, "pebble")
    server.write_managed(pebble, state, names=NAMES, issuer=issuer, more=[
        server.store_directive(etcd.endpoint, key_file, name)])
    return server


def hold_lock(etcd):
    """The certificate's lock, held by "test" until released (the lease
    returned): the nodes started meanwhile wait, so that whichever orders
    then waits for the others to mirror its challenges (a node that is not
    up yet cannot answer the CA)."""
    out = etcd.etcdctl("lease", "grant", "60")
    lease = re.search(r"lease ([0-9a-f]+) granted", out).group(1)
    etcd.etcdctl("put", "--lease=" + lease, "/acme/locks/" + CERT_ID, "test")
    return lease


def start_waiting(nodes, etcd, lease, pebble):
    """Starts the nodes, waits until each is in the fleet and waits for the
    lock's holder, then lets it go."""
    for s in nodes:
        s.start()

    def waiting(s):
        store, fleet = fleet_view(s)
        return (store and store["nodes"] == len(nodes) and fleet
                and fleet["action"] == "wait" and fleet["holder"] == "test")
    for s in nodes:
        wait_for(lambda: waiting(s), 30, "%s waiting" % s.node_name)
    assert pebble.orders_created() == 0
    etcd.etcdctl("lease", "revoke", lease)


def serial_of(server, root_file):
    return served_cert(server.https_port, NAMES[0], cafile=root_file,
                       host=server.addr).serial_number


def fleet_view(server):
    doc = server.status()
    cert = [c for c in doc["certificates"] if c["id"] == CERT_ID][0]
    return doc["store"], cert.get("fleet")


def test_one_order_any_node_answers(etcd, apache_factory, nginx_factory,
                                    pebble, root_file, workdir):
    """The issue's fleet: one Apache node and three nginx nodes."""
    key_file = write_key_file(workdir)       # root's, 0600
    lease = hold_lock(etcd)

    a = node(servers.Apache(apache_factory).configure(name="web-a",
                                                       children=1),
             "web-a", "127.0.0.2", pebble, workdir, etcd, key_file)
    nodes = [a]
    for i, addr in enumerate(("127.0.0.3", "127.0.0.4", "127.0.0.5"), 1):
        name = "web-n%d" % i
        nodes.append(node(servers.Nginx(nginx_factory).configure(name=name),
                          name, addr, pebble, workdir, etcd, key_file))
    with Balancer("127.0.0.1", HTTP_PORT, [(s.addr, HTTP_PORT)
                                           for s in nodes]) as lb:
        start_waiting(nodes, etcd, lease, pebble)

        serials = {}
        for s in nodes:
            serials[s.node_name] = wait_for(lambda: serial_of(s, root_file),
                                            60, "%s serving" % s.node_name)
        records = lb.challenge_records()

    # one order, one certificate for the fleet, served by every node
    assert pebble.orders_created() == 1, pebble.log()[-3000:]
    assert pebble.issued_count() == 1
    assert len(set(serials.values())) == 1, serials
    ordered = [s for s in nodes if s.issued_count(CERT_ID) == 1]
    assert len(ordered) == 1, [s.issued_count(CERT_ID) for s in nodes]
    orderer = ordered[0]
    others = [s for s in nodes if s is not orderer]
    for other in others:
        wait_for(lambda: "installed from the shared store (ordered by node %s)"
                 % orderer.node_name in other.error_log(), 10,
                 "%s installing the store's certificate" % other.node_name)
    # the CA's validations reached nodes that did not order, which answered
    # them from the challenges they mirrored
    assert any(r.backend != orderer.addr and r.status == 200
               for r in records), records
    assert all(r.status == 200 for r in records), records

    # the status: the store as each node sees it, what it did
    for s in nodes:
        store, fleet = fleet_view(s)
        assert store["backend"] == "etcd" and store["node"] == s.node_name
        assert store["reachable"] is True and store["nodes"] == len(nodes), \
            store
        assert fleet["action"] == ("order" if s is orderer else "install"), \
            (s.node_name, fleet)

    # the store holds the certificate, its key sealed: no key in clear
    dump = etcd.etcdctl("get", "--prefix", "/acme/")
    assert "/acme/certs/" + CERT_ID in dump
    assert "PRIVATE KEY" not in dump

    # etcd goes away: the Apache node says so once (error), both keep
    # serving, and it says when etcd is back (notice)
    down = "AcmeStore: the shared store is unreachable"
    etcd.stop()
    wait_for(lambda: down in a.error_log(), 20, "store down")
    for s in nodes:
        assert serial_of(s, root_file) == serials[s.node_name]
    etcd.start()
    wait_for(lambda: "AcmeStore: the shared store is reachable again"
             in a.error_log(), 20, "store back")
    assert a.error_log().count(down) == 1
    assert pebble.orders_created() == 1


def test_tls_alpn_mirrored(etcd, apache_factory, nginx_factory, pebble,
                           root_file, workdir):
    """tls-alpn-01 through the balancer on pebble's tlsPort: the answers
    (the challenge certificates' key authorizations) are mirrored into the
    Apache node's shared memory too; one order, both serve it."""
    key_file = write_key_file(workdir)
    lease = hold_lock(etcd)
    alpn = {"challenge": "tls-alpn-01"}
    a = servers.Apache(apache_factory).configure(name="web-a", children=1)
    n = servers.Nginx(nginx_factory).configure(name="web-n")
    nodes = []
    for s, name, addr in ((a, "web-a", "127.0.0.2"), (n, "web-n", "127.0.0.3")):
        s.use_tls_alpn()
        nodes.append(node(s, name, addr, pebble, workdir, etcd, key_file,
                          issuer=alpn))
    with Balancer("127.0.0.1", TLS_PORT, [(s.addr, TLS_PORT)
                                          for s in nodes]) as lb:
        start_waiting(nodes, etcd, lease, pebble)
        serials = [wait_for(lambda: serial_of(s, root_file), 60,
                            "%s serving" % s.node_name) for s in nodes]
        backends = {r.backend for r in lb.records}
    assert serials[0] == serials[1]
    assert pebble.orders_created() == 1
    orderer, = [s for s in nodes if s.issued_count(CERT_ID) == 1]
    # the CA's validation connections reached the other node too
    assert backends - {orderer.addr}, backends
    for s in nodes:
        assert "order failed" not in s.error_log()


def test_alone_then_published(etcd, apache_factory, pebble, root_file,
                              workdir):
    """etcd down at a cold start: a node with nothing to serve orders alone
    (no certificate counts as inside the emergency window), and publishes
    it once etcd answers; a node that starts later installs it from the
    store instead of ordering."""
    key_file = write_key_file(workdir)
    a = node(servers.Apache(apache_factory).configure(name="web-a",
                                                       children=1),
             "web-a", "127.0.0.2", pebble, workdir, etcd, key_file)
    b = node(servers.Apache(apache_factory).configure(name="web-b",
                                                       children=1),
             "web-b", "127.0.0.3", pebble, workdir, etcd, key_file)
    etcd.stop()
    with Balancer("127.0.0.1", HTTP_PORT, [(a.addr, HTTP_PORT)]):
        a.start()
        first = wait_for(lambda: serial_of(a, root_file), 60, "web-a serving")
    log = a.error_log()
    assert "AcmeStore: the shared store is unreachable" in log
    assert "ordering without the store's lock" in log
    assert pebble.orders_created() == 1

    etcd.start()
    wait_for(lambda: "the certificate ordered without the store is "
             "published to the shared store" in a.error_log(), 20,
             "published once etcd answers")

    b.start()
    assert wait_for(lambda: serial_of(b, root_file), 30, "web-b serving") \
        == first
    assert ("certificate %s installed from the shared store (ordered by "
            "node web-a)" % CERT_ID) in b.error_log()
    assert pebble.orders_created() == 1

    # a graceful restart of a node: its new driving child joins under the
    # same name, serves the same certificate, orders nothing
    joined = "AcmeStore: node web-a in the shared store"
    before = a.error_log().count(joined)
    a.reload()
    wait_for(lambda: a.error_log().count(joined) > before, 20,
             "web-a's new generation in the fleet")
    wait_for(lambda: fleet_view(b)[0]["nodes"] == 2, 20, "two nodes live")
    assert serial_of(a, root_file) == first
    assert pebble.orders_created() == 1


def test_acmestore_config_errors(apache_factory, pebble, workdir):
    srv = servers.Apache(apache_factory).configure(name="conf")
    state = os.path.join(workdir, "state", "pebble")
    key_file = write_key_file(workdir)
    ep = "http://127.0.0.1:2379"        # not asked: -t reads files only

    def conf(line, inside=False):
        text = srv.conf(pebble, state, names=NAMES)
        if inside:
            return text.replace("    SSLEngine on\n",
                                "    SSLEngine on\n    %s\n" % line, 1)
        return line + "\n" + text

    # without the key file: apache2 -t fails, naming the directive, the
    # file and its line
    missing = os.path.join(workdir, "nope.key")
    srv.raw.write_conf(conf(srv.store_directive(ep, missing, "n1")))
    rc, out = srv.test_config()
    line = srv.conf_line("AcmeStore")
    assert rc != 0, out
    assert "AcmeStore" in out and "nope.key" in out, out
    assert "line %d of %s" % (line, srv.raw.conf_path) in out, out

    # a key file that holds no key
    bad = os.path.join(workdir, "bad.key")
    with open(bad, "w") as f:
        f.write("not a key\n")
    srv.raw.write_conf(conf(srv.store_directive(ep, bad, "n1")))
    rc, out = srv.test_config()
    assert rc != 0 and "AcmeStore" in out and "bad.key" in out, out

    # server config only; another backend is refused; key_file= required
    srv.raw.write_conf(conf(srv.store_directive(ep, key_file, "n1"),
                            inside=True))
    rc, out = srv.test_config()
    assert rc != 0 and "AcmeStore" in out, out
    srv.raw.write_conf(conf("AcmeStore redis 127.0.0.1:6379 key_file=%s"
                            % key_file))
    rc, out = srv.test_config()
    assert rc != 0 and "AcmeStore: the backend must be etcd" in out, out
    srv.raw.write_conf(conf("AcmeStore etcd %s prefix=/acme/" % ep))
    rc, out = srv.test_config()
    assert rc != 0 and "AcmeStore: key_file= is required" in out, out

    srv.raw.write_conf(conf("AcmeStore etcd"))
    rc, out = srv.test_config()
    assert rc != 0 and "AcmeStore: the etcd endpoints are missing" in out, out

    # a relative file is below ServerRoot, as Apache's other file arguments
    shutil.copy(key_file, os.path.join(srv.raw.dir, "fleet-rel.key"))
    srv.raw.write_conf(conf(srv.store_directive(ep, "fleet-rel.key", "n1")))
    rc, out = srv.test_config()
    assert rc == 0, out
    srv.raw.write_conf(conf(srv.store_directive(ep, "nope-rel.key", "n1")))
    rc, out = srv.test_config()
    assert rc != 0 and os.path.join(srv.raw.dir, "nope-rel.key") in out, out

    # and a good one passes
    srv.raw.write_conf(conf(srv.store_directive(ep, key_file, "n1")))
    rc, out = srv.test_config()
    assert rc == 0, out

"""Several servers, one certificate (issue 15): the fleet's harder cases,
three nginx nodes on 127.0.0.2-4 sharing a real etcd, pebble validating
http-01 through the test's round-robin balancer (fleet.py), as in
test_fleet.py.

An order is caught in flight by ca_proxy.py's "hold" fault on the first
finalize request (held unanswered, never forwarded unless released): the
node holding the certificate's lock is then known (etcd's locks/<id>) and
the others wait for it.
  - a waiting node's status names the holder (fleet.action "wait",
    fleet.holder); released, the one order ends and every node serves it;
  - kill -9 of the holder (its whole process group): once its lease
    (lease_ttl=5) ends another node orders, and the survivors serve one
    certificate, the only one pebble finalized and issued;
  - short certificates renewed across the fleet: every node swaps to each
    new certificate, no handshake on any node fails meanwhile, one order
    per renewal."""

import os
import signal
import time
import pytest

import shortlived
from ca_proxy import CaProxy
from fleet import nginx_nodes, served_serials, Balancer, start_fleet, write_key_file
from pebble import HTTP_PORT
from tlsutil import wait_for

ADDRS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
NAME = "a.example.test"
CERT_ID = NAME + "_ecdsa-256"
LEASE_TTL = 5           # s: how long a dead holder holds the others up
TIMEOUT = 60
VALIDITY = 20           # s: pebble's certificates in the renewal test
RENEWALS = 2


def _one_serial(nodes, root_file):
    """The serial every node serves, when they all serve the same one."""
    s = served_serials(nodes, root_file, NAME)
    return s if None not in s.values() and len(set(s.values())) == 1 else None


def _fleet(cert):
    return [c for c in cert["certificates"] if c["id"] == CERT_ID][0]["fleet"]


@pytest.fixture
def balancer():
    with Balancer("127.0.0.1", HTTP_PORT, [(a, HTTP_PORT) for a in ADDRS]) as lb:
        yield lb


def _held_fleet(nginx_factory, pebble_factory, workdir, etcd):
    """pebble behind the proxy, whose first finalize is held; the fleet
    started; returns (pebble, proxy, root file, nodes, holder) once an
    order is held."""
    pebble = pebble_factory(nonce_reject=0)
    root_file = pebble.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(pebble)
    proxy.faults["/finalize-order/"] = ["hold"]
    proxy.start()
    nodes = start_fleet(nginx_nodes(nginx_factory), proxy, workdir, etcd.endpoint,
                        write_key_file(workdir), ADDRS, store_opts="lease_ttl=%d" % LEASE_TTL)
    wait_for(lambda: proxy.held == 1, TIMEOUT, "an order's finalize held")
    holder_name = etcd.etcdctl("get", "--print-value-only",
                               "/acme/locks/" + CERT_ID).strip()
    holder, = [n for n in nodes if n.node_name == holder_name]
    return pebble, proxy, root_file, nodes, holder


def test_fleet_waiting_node_shows_holder(nginx_factory, pebble_factory, workdir, etcd,
                                         balancer):
    """While one node's order is held, the other two wait for it and say
    so in their status; released, that order is the only one."""
    pebble, proxy, root_file, nodes, holder = _held_fleet(nginx_factory, pebble_factory,
                                                          workdir, etcd)
    try:
        others = [n for n in nodes if n is not holder]
        for n in others:
            wait_for(lambda: _fleet(n.status()) == {"action": "wait",
                                                     "holder": holder.node_name},
                     20, "%s waiting for %s" % (n.node_name, holder.node_name))
            assert ('node "%s" of the fleet orders it' % holder.node_name) in n.error_log()
        assert _fleet(holder.status())["action"] == "order"
        assert list(holder.status()["store"]["locks"]) == [CERT_ID]
        assert pebble.orders_created() == 1

        proxy.release.set()
        wait_for(lambda: _one_serial(nodes, root_file), TIMEOUT,
                 "every node serving the held order's certificate")
        assert pebble.orders_created() == 1
        assert pebble.count_requests("/finalize-order/") == 1
        assert holder.issued_count(CERT_ID) == 1
        for n in others:
            assert n.issued_count(CERT_ID) == 0
        for n in nodes:
            assert not n.problems(), n.problems()
    finally:
        proxy.release.set()
        proxy.stop()


def test_fleet_holder_killed_mid_order(nginx_factory, pebble_factory, workdir, etcd,
                                       balancer):
    """kill -9 of the node holding the lock while its finalize is held:
    after its lease another node orders; the survivors serve one
    certificate, the only finalize pebble saw and the only certificate it
    issued."""
    pebble, proxy, root_file, nodes, holder = _held_fleet(nginx_factory, pebble_factory,
                                                          workdir, etcd)
    try:
        os.killpg(holder.raw.master_pid, signal.SIGKILL)
        holder.raw.proc.wait(10)
        balancer.drop(holder.addr)
        survivors = [n for n in nodes if n is not holder]

        wait_for(lambda: _one_serial(survivors, root_file), TIMEOUT,
                 "the survivors serving one certificate")
        assert pebble.count_requests("/finalize-order/") == 1, pebble.log()[-3000:]
        assert pebble.issued_count() == 1
        assert pebble.orders_created() == 2     # the dead node's, the one that ended
        assert [m for _, m in proxy.faulted] == ["hold"]
        orderer, = [n for n in survivors if n.issued_count(CERT_ID) == 1]
        other, = [n for n in survivors if n is not orderer]
        wait_for(lambda: "installed from the shared store (ordered by node %s)"
                 % orderer.node_name in other.error_log(), 10,
                 "%s installing %s's certificate" % (other.node_name, orderer.node_name))
        assert other.issued_count(CERT_ID) == 0
        doc = orderer.status()
        assert doc["store"]["locks"] == {}, doc["store"]
        # the dead node's lock and challenges went with its lease, the
        # orderer's with its publication
        for what in ("locks", "challenges"):
            assert etcd.etcdctl("get", "--prefix", "--keys-only", "/acme/%s/" % what) \
                .strip() == "", what
        wait_for(lambda: orderer.status()["store"]["nodes"] == 2, 20,
                 "the dead node gone from the live nodes")
        for n in survivors:
            assert not n.problems(), n.problems()
    finally:
        proxy.stop()


def test_fleet_short_lived_renewals(nginx_factory, pebble_factory, workdir, etcd, balancer):
    """Certificates valid VALIDITY seconds, renewed at about half of it:
    at each renewal one node orders and every node swaps to the new
    certificate, while a client per node makes full handshakes: none
    fails, none gets an expired certificate, one order per renewal."""
    pebble = pebble_factory(nonce_reject=0, validity=VALIDITY)
    root_file = pebble.write_root(os.path.join(workdir, "root.pem"))
    nodes = start_fleet(nginx_nodes(nginx_factory), pebble, workdir, etcd.endpoint,
                        write_key_file(workdir), ADDRS)
    wait_for(lambda: _one_serial(nodes, root_file), TIMEOUT, "every node serving one certificate")

    load = {n.node_name: shortlived.LoadClient(n.https_port, root_file, [NAME],
                                               max_seconds=4 * VALIDITY, host=n.addr)
            for n in nodes}
    for c in load.values():
        c.start()
    try:
        def swapped():
            for n in nodes:
                assert n.running(), "%s died" % n.node_name
            return all(r["switches"][NAME] >= RENEWALS for r in
                       (shortlived.analyse([c], [NAME], 1.0) for c in load.values()))
        wait_for(swapped, 3 * VALIDITY, "every node swapping %d times" % RENEWALS,
                 interval=0.5)
    finally:
        for c in load.values():
            c.stop_event.set()
        for c in load.values():
            c.join(30)

    # the next renewal is half a lifetime away: the counts are final here
    assert pebble.orders_created() == 1 + RENEWALS, pebble.log()[-3000:]
    assert pebble.issued_count() == 1 + RENEWALS
    served = set()
    for name, c in load.items():
        r = shortlived.analyse([c], [NAME], 1.0)
        assert r["failures"] == [], (name, r["failures"][:5])
        assert r["expired"] == [], (name, r["expired"][:5])
        served |= {s[1] for s in c.seen}
    # every node served the same certificates: one per issuance
    assert len(served) == 1 + RENEWALS, served
    for n in nodes:
        assert not n.problems(), n.problems()


def test_fleet_failed_order_backs_off_as_one(nginx_factory, pebble_factory, workdir, etcd,
                                             balancer):
    """The CA refuses the name: the node whose order failed keeps the lock
    until its next attempt (its backoff, retry_delay 8s), so the other
    nodes wait for it instead of each ordering in turn; the fleet makes
    the attempts one server would."""
    from ca_proxy import Problem
    pebble = pebble_factory(nonce_reject=0)
    proxy = CaProxy(pebble)
    proxy.problems[("/order-plz", NAME)] = Problem(400, "rejectedIdentifier",
                                                   "policy forbids it")
    proxy.start()
    try:
        nodes = start_fleet(nginx_nodes(nginx_factory), proxy, workdir, etcd.endpoint,
                            write_key_file(workdir), ADDRS, issuer={"retry_delay": "8s"},
                            store_opts="lease_ttl=%d" % LEASE_TTL)
        failed = "order failed"

        def failing():
            f = [n for n in nodes if failed in n.error_log()]
            return f if f else None
        first, = wait_for(failing, TIMEOUT, "a failed order")
        # its second attempt comes after its backoff; meanwhile the others
        # wait for it (they would have ordered after their 5 s look-again)
        wait_for(lambda: first.error_log().count(failed) >= 2, TIMEOUT,
                 "the failed node's second attempt")
        others = [n for n in nodes if n is not first]
        for n in others:
            assert failed not in n.error_log(), n.error_log()[-2000:]
            assert _fleet(n.status()) == {"action": "wait", "holder": first.node_name}
        assert len(proxy.problem_times) == 2, proxy.problem_times
        assert list(first.status()["store"]["locks"]) == [CERT_ID]
    finally:
        proxy.stop()


OUTAGE = 15             # s: etcd stopped, longer than a node's liveness lease


def test_fleet_etcd_outage_then_renewal(nginx_factory, pebble_factory, workdir, etcd,
                                        balancer):
    """etcd stopped for longer than the nodes' liveness leases while a
    renewal is asked for: every node keeps serving, nobody orders (no
    lock can be taken, nothing is near its expiry); etcd back, the
    renewal is ordered once and every node serves the new certificate."""
    import http.client
    pebble = pebble_factory(nonce_reject=0)
    root_file = pebble.write_root(os.path.join(workdir, "root.pem"))
    nodes = start_fleet(nginx_nodes(nginx_factory), pebble, workdir, etcd.endpoint,
                        write_key_file(workdir), ADDRS, control=True)
    first = wait_for(lambda: _one_serial(nodes, root_file), TIMEOUT,
                     "every node serving the first certificate")
    assert pebble.orders_created() == 1

    etcd.stop()
    for n in nodes:
        wait_for(lambda: n.status()["store"]["reachable"] is False, 20,
                 "%s seeing the store unreachable" % n.node_name)
    asker = nodes[1]
    conn = http.client.HTTPConnection(asker.addr, asker.http_port, timeout=5)
    conn.request("POST", "/acme-status?action=renew&id=" + CERT_ID, body=b"",
                 headers={"Host": NAME})
    r = conn.getresponse()
    assert r.status in (200, 202), (r.status, r.read())
    conn.close()
    deadline = time.monotonic() + OUTAGE
    while time.monotonic() < deadline:
        assert served_serials(nodes, root_file, NAME) == first
        time.sleep(1)
    assert pebble.orders_created() == 1, "an order while etcd was down"

    etcd.start()
    renewed = wait_for(lambda: (lambda s: s if s and s != first else None)(
        _one_serial(nodes, root_file)), TIMEOUT,
        "every node serving the renewal ordered after the outage")
    assert len(set(renewed.values())) == 1
    assert pebble.orders_created() == 2, pebble.orders_created()
    for n in nodes:
        assert n.error_log().count("acme_store: the shared store is unreachable") == 1
        assert not n.problems(), n.problems()

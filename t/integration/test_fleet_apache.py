"""Several Apache servers, one certificate (issue 15, AcmeStore): two
mod_acme_auto nodes, each on its own 127.0.0.x address, share a real etcd;
pebble validates http-01 through a round-robin TCP balancer in front of
them (pebble's DNS answers every name with 127.0.0.1, where the balancer
listens).  One order for the fleet, every node serves its certificate, and
the node that did not order answers the CA's validation from the challenges
it mirrored out of the store.

The balancer is this file's own (minimal); the nginx side's fleet test may
bring a shared one (t/integration/fleet.py)."""

import os
import re
import socket
import subprocess
import threading
import time

import pytest

from apache_server import HTTP_PORT, HTTPS_PORT, managed_conf
from etcd import Etcd
from pebble import port_open
from tlsutil import get_json, served_cert, wait_for

NAMES = ("a.example.test", "b.example.test")
CERT_ID = "a.example.test_ecdsa-256"
NODES = (("node-a", "127.0.0.2"), ("node-b", "127.0.0.3"))


class RoundRobin(threading.Thread):
    """127.0.0.1:port -> each backend in turn, one connection each; pipes
    bytes both ways.  .picks: the backend index of every connection."""

    def __init__(self, port, backends):
        super().__init__(daemon=True)
        self.backends = backends
        self.picks = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        for s in (dst, src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self):
        n = 0
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            i = n % len(self.backends)
            n += 1
            self.picks.append(i)
            try:
                b = socket.create_connection(self.backends[i], timeout=5)
            except OSError:
                c.close()
                continue
            c.settimeout(30)
            b.settimeout(30)
            for a, z in ((c, b), (b, c)):
                threading.Thread(target=self._pipe, args=(a, z),
                                 daemon=True).start()

    def stop(self):
        self.stopping.set()
        self.sock.close()
        self.join(5)


def on_address(text, ip):
    """The node's listeners and vhosts on ip instead of 127.0.0.1."""
    return re.sub(r"^(\s*(?:Listen|<VirtualHost)\s+)127\.0\.0\.1:",
                  r"\g<1>%s:" % ip, text, flags=re.M)


def store_line(endpoint, key_file, node, extra=""):
    return "AcmeStore etcd %s prefix=/acme/ key_file=%s node=%s%s\n" % (
        endpoint, key_file, node, extra)


@pytest.fixture
def etcd(workdir):
    e = Etcd(workdir).start()
    yield e
    e.stop()


@pytest.fixture
def key_file(workdir):
    path = os.path.join(workdir, "fleet.key")
    out = subprocess.run(["openssl", "rand", "-base64", "32"], check=True,
                         capture_output=True, timeout=10).stdout
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
              "wb") as f:
        f.write(out)
    # root's only: the parent reads it (the children run as www-data)
    return path


def test_one_order_any_node_answers(etcd, apache_factory, pebble, root_file,
                                    key_file, workdir):
    # the certificate's lock is held (by "the test") until both nodes are
    # in the fleet: whichever orders then waits for the other to mirror
    # its challenges (a node that is not up yet cannot answer the CA)
    out = etcd.etcdctl("lease", "grant", "60")
    lease = re.search(r"lease ([0-9a-f]+) granted", out).group(1)
    etcd.etcdctl("put", "--lease=" + lease, "/acme/locks/" + CERT_ID, "test")

    lb = RoundRobin(HTTP_PORT, [(ip, HTTP_PORT) for _, ip in NODES])
    lb.start()
    nodes = {}
    try:
        for name, ip in NODES:
            srv = apache_factory(name=name, children=1)
            state = os.path.join(workdir, "state-" + name, "pebble")
            text = srv.write_conf(store_line(etcd.endpoint, key_file, name)
                                  + managed_conf(pebble, state, names=NAMES))
            with open(srv.conf_path, "w") as f:
                f.write(on_address(text, ip))
            nodes[name] = (srv, ip)
        for srv, ip in nodes.values():
            srv.start(ports=())
        for name, (srv, ip) in nodes.items():
            wait_for(lambda: port_open(HTTPS_PORT, host=ip), 20,
                     "%s listening" % ip)
            wait_for(lambda: "AcmeStore: node %s in the shared store" % name
                     in srv.error_log(), 20, "%s in the fleet" % name)
        # both wait for the lock's holder, no order yet
        wait_for(lambda: all("node test orders it" in srv.error_log()
                             for srv, _ in nodes.values()), 20,
                 "both nodes waiting")
        assert pebble.orders_created() == 0
        etcd.etcdctl("lease", "revoke", lease)

        serials = {}
        for name, (srv, ip) in nodes.items():
            cert = wait_for(lambda: _served(ip, root_file), 90,
                            "%s serving the ACME certificate" % name)
            serials[name] = cert.serial_number
    finally:
        lb.stop()

    # one order, one certificate for the fleet, served by every node
    assert pebble.orders_created() == 1, pebble.log()[-3000:]
    assert pebble.issued_count() == 1
    assert len(set(serials.values())) == 1, serials

    logs = {name: srv.error_log() for name, (srv, _) in nodes.items()}
    ordered = [n for n, t in logs.items()
               if "mod_acme_auto: %s: new certificate" % CERT_ID in t]
    assert len(ordered) == 1, logs
    other = [n for n in logs if n not in ordered][0]
    assert ("certificate %s installed from the shared store (ordered by "
            "node %s)" % (CERT_ID, ordered[0])) in logs[other], logs[other]
    # the CA's validation reached the node that did not order, which
    # answered it from the challenges it mirrored
    assert "answering http-01 challenge" in logs[other], (lb.picks, logs[other])

    # the status: the store as each node sees it, what it did for the
    # certificate
    for name, (srv, ip) in nodes.items():
        doc = get_json("http://%s:%d/acme-status" % (ip, HTTP_PORT),
                       host=NAMES[0])
        store = doc["store"]
        assert store["backend"] == "etcd" and store["node"] == name, store
        assert store["reachable"] is True and store["nodes"] == 2, store
        cert = [c for c in doc["certificates"] if c["id"] == CERT_ID][0]
        assert cert["fleet"]["action"] == (
            "order" if name == ordered[0] else "install"), cert["fleet"]

    # the store holds the certificate, its key sealed: no key in clear
    dump = etcd.etcdctl("get", "--prefix", "/acme/")
    assert "/acme/certs/" in dump
    assert "PRIVATE KEY" not in dump

    # etcd goes away: each node says so once (error), keeps serving, and
    # says when it is back (notice)
    down = "AcmeStore: the shared store is unreachable"
    etcd.stop()
    for name, (srv, ip) in nodes.items():
        wait_for(lambda: down in srv.error_log(), 20, "%s: store down" % name)
        assert _served(ip, root_file).serial_number == serials[name]
    etcd.start()
    for name, (srv, ip) in nodes.items():
        wait_for(lambda: "the shared store is reachable again"
                 in srv.error_log(), 20, "%s: store back" % name)
        assert srv.error_log().count(down) == 1, name
    assert pebble.orders_created() == 1


def start_node(apache_factory, name, ip, etcd, key_file, pebble, workdir):
    srv = apache_factory(name=name, children=1)
    state = os.path.join(workdir, "state-" + name, "pebble")
    text = srv.write_conf(store_line(etcd.endpoint, key_file, name)
                          + managed_conf(pebble, state, names=NAMES))
    with open(srv.conf_path, "w") as f:
        f.write(on_address(text, ip))
    srv.start(ports=())
    wait_for(lambda: port_open(HTTPS_PORT, host=ip), 20, "%s listening" % ip)
    return srv


def test_alone_then_published(etcd, apache_factory, pebble, root_file,
                              key_file, workdir):
    """etcd down at a cold start: a node with nothing to serve orders alone
    (its certificate is inside the emergency window: there is none), and
    publishes it once etcd answers; a node that starts later installs it
    from the store instead of ordering."""
    (name_a, ip_a), (name_b, ip_b) = NODES
    etcd.stop()
    lb = RoundRobin(HTTP_PORT, [(ip_a, HTTP_PORT)])
    lb.start()
    try:
        a = start_node(apache_factory, name_a, ip_a, etcd, key_file, pebble,
                       workdir)
        first = wait_for(lambda: _served(ip_a, root_file), 60,
                         "%s serving" % name_a)
    finally:
        lb.stop()
    log = a.error_log()
    assert "AcmeStore: the shared store is unreachable" in log
    assert "ordering without the store's lock" in log
    assert pebble.orders_created() == 1

    etcd.start()
    wait_for(lambda: "the certificate ordered without the store is "
             "published to the shared store" in a.error_log(), 20,
             "published once etcd answers")

    b = start_node(apache_factory, name_b, ip_b, etcd, key_file, pebble,
                   workdir)
    got = wait_for(lambda: _served(ip_b, root_file), 30, "%s serving" % name_b)
    assert got.serial_number == first.serial_number
    assert ("certificate %s installed from the shared store (ordered by "
            "node %s)" % (CERT_ID, name_a)) in b.error_log()
    assert pebble.orders_created() == 1


def _served(ip, root_file):
    return served_cert(HTTPS_PORT, NAMES[0], cafile=root_file, host=ip)


def test_acmestore_config_errors(apache_factory, pebble, key_file, workdir):
    etcd = "http://127.0.0.1:2379"      # not asked: -t reads files only
    srv = apache_factory(name="conf")
    state = os.path.join(workdir, "state", "pebble")
    body = managed_conf(pebble, state, names=NAMES)

    # without the key file: apache2 -t fails, naming the directive, the
    # file and its line
    missing = os.path.join(workdir, "nope.key")
    srv.write_conf(store_line(etcd, missing, "n1") + body)
    rc, out = srv.test_config()
    line = srv.conf_line("AcmeStore")
    assert rc != 0, out
    assert "AcmeStore" in out and "nope.key" in out, out
    assert "line %d of %s" % (line, srv.conf_path) in out, out

    # a key file that holds no key
    bad = os.path.join(workdir, "bad.key")
    with open(bad, "w") as f:
        f.write("not a key\n")
    srv.write_conf(store_line(etcd, bad, "n1") + body)
    rc, out = srv.test_config()
    assert rc != 0 and "AcmeStore" in out, out

    # server config only; another backend is refused
    srv.write_conf(body.replace(
        "    SSLEngine on\n",
        "    SSLEngine on\n    " + store_line(etcd, key_file, "n1"), 1))
    rc, out = srv.test_config()
    assert rc != 0 and "AcmeStore" in out, out
    srv.write_conf("AcmeStore redis 127.0.0.1:6379 key_file=%s\n" % key_file
                   + body)
    rc, out = srv.test_config()
    assert rc != 0 and "AcmeStore: the backend must be etcd" in out, out

    # and a good one passes
    srv.write_conf(store_line(etcd, key_file, "n1") + body)
    rc, out = srv.test_config()
    assert rc == 0, out

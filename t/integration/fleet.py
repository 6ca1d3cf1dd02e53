"""Several servers, one certificate (issue 15): a round-robin TCP balancer
of the test's own in front of the nodes, and the nodes of a fleet.

    lb = Balancer("127.0.0.1", HTTP_PORT, [("127.0.0.2", HTTP_PORT), ...]).start()
    lb.records     # [Record(backend, request_line, status)], one per connection
    lb.drop("127.0.0.2")    # a dead node out of the rotation
    lb.stop()

    nodes = start_fleet(make_server, pebble, workdir, etcd.endpoint, key_file,
                        ["127.0.0.2", "127.0.0.3", "127.0.0.4"])

pebble's DNS (pebble-challtestsrv, pebble.py) answers every name with
127.0.0.1, so a balancer there on pebble's http-01 port receives every
validation request and passes each connection to the next node in turn.
Every wait is bounded (socket timeouts, a cap on connections in flight).

A node is a servers.Server (nginx or Apache: make_server(name) returns
one, e.g. servers.Nginx(nginx_factory) with its own prefix) listening on its
own 127.0.0.x address with the same ports, with its own local store and the
fleet's acme_store line (Server.store_directive).
"""

import collections
import os
import socket
import threading

Record = collections.namedtuple("Record", "backend request_line status")

MAX_CONNECTIONS = 32        # in flight at once; more are refused
TIMEOUT = 10.0              # s: any read, write or connect


class Balancer:
    def __init__(self, host, port, backends):
        self.host, self.port = host, port
        self.backends = list(backends)
        self.records = []
        self._lock = threading.Lock()
        self._next = 0
        self._active = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._sock = None
        self._thread = None
        self._stopping = False

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        s.settimeout(0.2)
        self._sock = s
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        if self._thread:
            self._thread.join(5)
        if self._sock:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def drop(self, host):
        """Stops sending connections to host (a dead node, as a balancer's
        health check would)."""
        with self._lock:
            self.backends = [b for b in self.backends if b[0] != host]

    def backend_of(self):
        with self._lock:
            b = self.backends[self._next % len(self.backends)]
            self._next += 1
            return b

    def _accept(self):
        while not self._stopping:
            try:
                c, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if not self._active.acquire(blocking=False):
                c.close()
                continue
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, client):
        backend = self.backend_of()
        rec = {"request": b"", "response": b""}
        try:
            client.settimeout(TIMEOUT)
            with socket.create_connection(backend, timeout=TIMEOUT) as up:
                up.settimeout(TIMEOUT)
                t = threading.Thread(target=self._pipe, args=(client, up, rec, "request"),
                                     daemon=True)
                t.start()
                self._pipe(up, client, rec, "response")
                t.join(TIMEOUT)
        except OSError:
            pass
        finally:
            client.close()
            self._active.release()
            line = rec["request"].split(b"\r\n", 1)[0].decode(errors="replace")
            status = None
            head = rec["response"].split(b"\r\n", 1)[0].split()
            if len(head) >= 2 and head[1].isdigit():
                status = int(head[1])
            with self._lock:
                self.records.append(Record(backend[0], line, status))

    @staticmethod
    def _pipe(src, dst, rec, which):
        """Copies src to dst until EOF; keeps the first bytes of each way."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if len(rec[which]) < 4096:
                    rec[which] += data[:4096]
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def challenge_records(self):
        """The records of http-01 validation requests."""
        with self._lock:
            return [r for r in self.records
                    if "/.well-known/acme-challenge/" in r.request_line]


def write_key_file(workdir, name="fleet.key"):
    """The fleet's sealing key (32 random bytes, base64), 0600: the server
    reads it at configuration time as root (nginx's master), as a TLS key."""
    import base64
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    os.chmod(path, 0o600)
    return path


def node_conf(server, pebble, workdir, endpoints, key_file, addr, name, issuer=None,
              store_opts="", control=False):
    """Writes the configuration of one node: its own address and store, the
    shared store line (store_opts: more of its words, e.g. "lease_ttl=5");
    control: the status location takes renew / revoke requests (nginx).
    Returns its state directory."""
    state = os.path.join(workdir, "state-" + name, "pebble")
    server.use_address(addr)
    line = server.store_directive(endpoints, key_file, name)
    if store_opts:
        line = (line[:-1] + " %s;" % store_opts if line.endswith(";")
                else line + " " + store_opts)
    if control:
        text = server.conf(pebble, state, issuer=issuer, more=[line])
        server.raw.write_conf(text.replace("acme_status;", "acme_status control;"))
    else:
        server.write_managed(pebble, state, issuer=issuer, more=[line])
    return state


def start_fleet(make_server, pebble, workdir, endpoints, key_file, addrs, issuer=None,
                setup=None, store_opts="", control=False):
    """Configures one node per address (node names n1, n2, ...; setup(server)
    first when given, e.g. Server.use_tls_alpn; store_opts as node_conf's),
    then starts them all at once (threads: a cold start of the whole
    fleet)."""
    nodes = []
    for i, addr in enumerate(addrs, 1):
        name = "n%d" % i
        s = make_server(name)
        if setup is not None:
            setup(s)
        node_conf(s, pebble, workdir, endpoints, key_file, addr, name, issuer, store_opts,
                  control)
        s.node_name = name
        nodes.append(s)
    errors = []

    def start(s):
        try:
            s.start()
        except Exception as e:     # reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(s,)) for s in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return nodes


def nginx_nodes(nginx_factory):
    """start_fleet's make_server for nginx nodes."""
    import servers
    return lambda name: servers.Nginx(nginx_factory).configure(name=name)


def served_serials(nodes, root_file, name="a.example.test"):
    """{node name: serial (hex) of the certificate it serves for name, or
    None when it serves none that verifies}."""
    from tlsutil import serial_hex, served_cert
    out = {}
    for n in nodes:
        try:
            out[n.node_name] = serial_hex(served_cert(n.https_port, name, cafile=root_file,
                                                      host=n.addr))
        except Exception:
            out[n.node_name] = None
    return out

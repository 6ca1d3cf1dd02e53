"""Apache (mod_acme_auto): tls-alpn-01.  pebble validates by connecting to
<name>:tlsPort with ALPN "acme-tls/1"; the managed vhost listens there (no
HTTP listener on pebble's httpPort at all), gets its certificate without a
restart, and ordinary clients on the same port keep negotiating h2 /
http/1.1 and get the normal certificate."""

import json
import os
import re
import select
import socket
import ssl
import threading
import urllib.request

import pytest

from apache_server import HTTPS_PORT, apache_factory, get_status, status_cert  # noqa: F401
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from pebble import CHALL_MGMT_PORT, HTTP_PORT, TLS_PORT, port_open
from tlsutil import is_self_signed, sans, wait_acme_cert, wait_for

NAMES = ["a.example.test", "b.example.test"]
ISSUE_TIMEOUT = 60
# plain HTTP for the status handler: not pebble's httpPort
STATUS_PORT = HTTPS_PORT

BODY = """\
LoadModule http2_module @MODDIR@/mod_http2.so
<AcmeIssuer pebble>
    AcmeDirectory @DIRURL@
    AcmeContact admin@example.test
    AcmeTermsOfService agreed
    AcmeTrustedCA @CA@
    AcmeStateDir @STATE@
    AcmeChallenge @CHALLENGE@
</AcmeIssuer>

<VirtualHost 127.0.0.1:@TLS_PORT@>
    ServerName a.example.test
    ServerAlias b.example.test
    SSLEngine on
@PROTOCOLS@
    AcmeCertificate pebble @CERT_ARGS@
</VirtualHost>

<VirtualHost 127.0.0.1:@STATUS_PORT@>
    ServerName a.example.test
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>
"""


def _server(apache_factory, pebble, state_dir, challenge="tls-alpn-01",
            protocols="    Protocols h2 http/1.1 acme-tls/1", cert_args="", **kw):
    srv = apache_factory(https_port=TLS_PORT, http_port=STATUS_PORT, **kw)
    srv.write_conf(BODY, DIRURL=pebble.directory_url, CA=pebble.ca_pem,
                   STATE=state_dir, CHALLENGE=challenge, PROTOCOLS=protocols,
                   TLS_PORT=TLS_PORT, STATUS_PORT=STATUS_PORT, CERT_ARGS=cert_args)
    return srv


def _alpn(port, sni, protos):
    """(selected ALPN protocol, leaf DER) of one handshake offering protos."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(protos)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.selected_alpn_protocol(), t.getpeercert(binary_form=True)


def _https_get(port, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            t.sendall(b"GET /index.html HTTP/1.1\r\nHost: " + sni.encode()
                      + b"\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = t.recv(4096)
                if not chunk:
                    break
                data += chunk
    return data


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_tls_alpn_issuance_without_restart(mpm, apache_factory, pebble, root_file,
                                           state_dir):
    srv = _server(apache_factory, pebble, state_dir, mpm=mpm)
    srv.start()
    parent = srv.parent_pid
    assert not port_open(HTTP_PORT), "nothing may answer http-01 in this test"

    cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert sans(cert) == NAMES
    assert not is_self_signed(cert)
    assert srv.parent_pid == parent and srv.running()
    assert srv.error_log().count("resuming normal operations") == 1

    log = srv.error_log()
    for name in NAMES:
        assert "answering tls-alpn-01 challenge for %s" % name in log, log[-3000:]
    # the challenge certificate is made once per challenge in each child
    made = re.findall(r"tls-alpn-01 certificate for (\S+) made in pid (\d+)", log)
    assert made and len(made) == len(set(made)), made

    st = status_cert(get_status(port=STATUS_PORT))
    assert st["state"] == "valid" and st["last_error"] is None, st

    # ordinary clients on the same port: normal ALPN, the issued certificate
    if mpm == "event":      # mod_http2 does h2 on the event MPM only
        proto, der = _alpn(TLS_PORT, "a.example.test", ["h2", "http/1.1"])
        assert proto == "h2"
    proto, der = _alpn(TLS_PORT, "b.example.test", ["http/1.1"])
    assert proto == "http/1.1"
    assert ssl.DER_cert_to_PEM_cert(der) and der == \
        _alpn(TLS_PORT, "a.example.test", ["http/1.1"])[1]
    resp = _https_get(TLS_PORT, "a.example.test")
    assert resp.startswith(b"HTTP/1.1 200") and b"hello from apache" in resp, resp[:300]

    # acme-tls/1 offered with no pending challenge: not selected, normal cert
    proto, der2 = _alpn(TLS_PORT, "a.example.test", ["acme-tls/1", "http/1.1"])
    assert proto == "http/1.1"
    assert der2 == der
    assert not srv.crashes(), srv.crashes()


ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
PROXY_HOST = "127.0.0.2"


class ProbingProxy:
    """pebble's validation connects here (its DNS points the names at
    PROXY_HOST); before forwarding each connection to Apache, we make our own
    acme-tls/1 handshakes (TLS 1.2 and 1.3) for every name: a challenge is
    pending for at least the name being validated, with no timing involved."""

    def __init__(self, names):
        self.names = names
        self.results = []       # (name, version, alpn, cert)
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((PROXY_HOST, TLS_PORT))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.sock.close()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _probe(self, name, version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_alpn_protocols(["acme-tls/1"])
        with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                der = t.getpeercert(binary_form=True)
                return t.selected_alpn_protocol(), x509.load_der_x509_certificate(der)

    def _handle(self, conn):
        try:
            for name in self.names:
                for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                    try:
                        alpn, cert = self._probe(name, version)
                        with self.lock:
                            self.results.append((name, version, alpn, cert))
                    except Exception as e:      # a refused acme-tls/1 handshake
                        with self.lock:
                            self.results.append((name, version, None, None))
                            self.errors.append(repr(e))
            up = socket.create_connection(("127.0.0.1", TLS_PORT), timeout=10)
            socks = [conn, up]
            for _ in range(1000):       # bounded: a validation is a few records
                r, _, _ = select.select(socks, [], [], 10)
                if not r:
                    break
                done = False
                for a in r:
                    try:
                        data = a.recv(65536)
                        if data:
                            (up if a is conn else conn).sendall(data)
                    except OSError:     # a reset by either side ends it
                        data = b""
                    if not data:
                        done = True
                        break
                if done:
                    break
            up.close()
        finally:
            conn.close()

    def challenge_answers(self, name, version):
        """Probes of name/version that got acme-tls/1 with an RFC 8737 certificate."""
        out = []
        with self.lock:
            for n, v, alpn, cert in self.results:
                if n != name or v != version or alpn != "acme-tls/1":
                    continue
                ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER)
                assert ext.critical
                assert sans(cert) == [name]
                out.append(cert)
        return out


def _point_names_at(names, address):
    for n in names:
        req = urllib.request.Request(
            "http://127.0.0.1:%d/add-a" % CHALL_MGMT_PORT,
            data=json.dumps({"host": n + ".", "addresses": [address]}).encode(),
            method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200


@pytest.mark.parametrize("key", ["ecdsa:256", "rsa:2048"])
def test_tls_alpn_challenge_answer_tls12_and_tls13(key, apache_factory, pebble, root_file,
                                                   state_dir):
    proxy = ProbingProxy(NAMES)
    try:
        _point_names_at(NAMES, PROXY_HOST)
        srv = _server(apache_factory, pebble, state_dir, cert_args="key=" + key)
        srv.start()
        cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                              proc_alive=srv.running)
        assert sans(cert) == NAMES
        for name in NAMES:
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                assert proxy.challenge_answers(name, version), \
                    (name, version, proxy.results, proxy.errors)
    finally:
        proxy.close()


TWO_KEYS = """
<VirtualHost 127.0.0.1:@TLS_PORT@>
    ServerName a.example.test
    ServerAlias b.example.test
    SSLEngine on
    Protocols http/1.1 acme-tls/1
    AcmeCertificate pebble key=rsa:2048
</VirtualHost>
"""


def test_tls_alpn_two_keys_same_names_take_turns(apache_factory, pebble_factory, state_dir,
                                                 workdir):
    """An ECDSA and an RSA certificate for the same names: their tls-alpn-01
    challenges for one name cannot be pending at once, so the orders take
    turns; both are issued (no authorization reuse: each order validates)."""
    pebble = pebble_factory(authz_reuse=0)
    root_file = pebble.write_root(os.path.join(workdir, "root.pem"))
    srv = _server(apache_factory, pebble, state_dir)
    with open(srv.conf_path, "a") as f:
        f.write(TWO_KEYS.replace("@TLS_PORT@", str(TLS_PORT)))
    srv.start()

    def both_valid():
        certs = get_status(port=STATUS_PORT)["certificates"]
        return len(certs) == 2 and all(c["state"] == "valid" for c in certs) and certs
    certs = wait_for(both_valid, ISSUE_TIMEOUT, "both certificates issued")
    assert sorted(c["key_type"] for c in certs) == ["ecdsa:256", "rsa:2048"]
    assert all(c["consecutive_failures"] == 0 for c in certs), certs
    assert "attempt 1 failed" not in srv.error_log()    # no clash, no retry
    cert = wait_acme_cert(TLS_PORT, "b.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert sans(cert) == NAMES
    assert not srv.crashes(), srv.crashes()


CONFIG_CASES = [
    ("no-acme-tls-protocol", {"protocols": "    Protocols h2 http/1.1"},
     ["AcmeChallenge tls-alpn-01", "acme-tls/1", "<AcmeIssuer pebble>"]),
    ("no-protocols", {"protocols": ""},
     ["AcmeChallenge tls-alpn-01", "Protocols"]),
    ("unknown-challenge", {"challenge": "dns-02"},
     ["AcmeChallenge", "'dns-02'", "http-01, tls-alpn-01 or dns-01"]),
]


@pytest.mark.parametrize("case_id,kw,words", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_tls_alpn_config_errors(case_id, kw, words, apache_factory, pebble_factory,
                                state_dir):
    pebble = pebble_factory(start=False)
    srv = _server(apache_factory, pebble, state_dir, **kw)
    rc, out = srv.test_config()
    assert rc != 0, out
    for w in words:
        assert w in out, (w, out)


def test_tls_alpn_config_ok(apache_factory, pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    srv = _server(apache_factory, pebble, state_dir)
    rc, out = srv.test_config()
    assert rc == 0, out
